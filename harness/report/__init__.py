"""Reports people look at: routing figures, results and samples in one self-contained HTML page."""
