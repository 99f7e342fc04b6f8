"""Operations of a venue laptop with no technician: backups and restore, health checks, logs."""
