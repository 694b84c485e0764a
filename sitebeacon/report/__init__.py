"""What the stored records say: export and summaries."""
