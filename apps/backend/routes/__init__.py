"""HTTP routes of the backend; each module holds one router."""
