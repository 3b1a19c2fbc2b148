"""HTTP routes of the backend, one router a module: `public` (the task API) and
`internal` (what only the platform calls). The backend subscribes to no events."""
