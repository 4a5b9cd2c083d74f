"""What people look at: the self-contained HTML report and the live dashboard the service serves."""
