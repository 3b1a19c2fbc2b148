"""HTTP routes of the notification service: `public` (notifications and their settings,
for users) and `events` (what Dapr delivers)."""
