"""The media plane: a selective forwarding unit that never decodes (see DESIGN.md)."""
