"""The plain-HTTP front door: the lightweight rating page, the presenter view and their JSON routes."""
