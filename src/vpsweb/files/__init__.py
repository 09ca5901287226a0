"""Files a person reads or writes: poem input files, the JSON and Markdown output."""
