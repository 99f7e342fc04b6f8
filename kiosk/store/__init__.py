"""The database: connections and the write lock, the schema and its migrations, the change log (the one write path), and the validator every change passes."""
