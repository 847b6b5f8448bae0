"""Clients of the services around the product: the output bucket, S3, Kafka."""
