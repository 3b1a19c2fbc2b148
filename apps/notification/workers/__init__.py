"""Background work of the notification service: the webhook worker (a loop in every
replica)."""
