"""Fire stations and waste depots: where crews start from."""
