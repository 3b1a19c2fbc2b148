"""HTTP routes of the recurring service: `public` (the recurrence preview, for users) and
`events` (what Dapr delivers)."""
