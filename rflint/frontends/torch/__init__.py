"""The torch front end: build on the meta device, capture the ops, map them onto the core."""
