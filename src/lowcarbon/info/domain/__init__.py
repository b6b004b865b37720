"""Pure rules of the information service and the demonstration-project registry (no Django)."""
