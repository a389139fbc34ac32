"""Kafka: the usage, alert and agreement consumers, their fetch loop, partition positioning, dead letters."""
