"""Storage backends: opaque sealed records behind one small interface."""
