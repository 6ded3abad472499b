"""Table tests of the inventory loader, without a host."""
