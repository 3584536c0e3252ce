"""The delivery engine: claims due deliveries from the outbox, sends them through the
provider clients, and records what the providers answered."""
