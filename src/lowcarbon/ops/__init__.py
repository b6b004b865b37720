"""Operations: production serving, deployment checks, backup and restore."""
