"""supervision-hub: a Kafka-native integration hub for supervision agencies."""
