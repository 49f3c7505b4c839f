"""The audit trail (审计): entries and chains (``entries``), checking them
(``verify``), a lead's story (``trail``) and a worker's chain on the audit
topic (``log``)."""
