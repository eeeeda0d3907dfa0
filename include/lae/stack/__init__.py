"""The local stack: real Kafka, Cassandra, an S3 endpoint and Airflow as processes on loopback."""
