"""Applications on the bus: the board, the report (通报), status, the lead view, and the whole pipeline."""
