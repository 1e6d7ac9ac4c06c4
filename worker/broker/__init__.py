"""What every publisher to RabbitMQ shares: a connection made on first use."""
