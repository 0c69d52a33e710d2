"""Small app scripts the integration tests run as separate processes."""
