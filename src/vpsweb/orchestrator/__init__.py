"""Worker-side orchestration: the canvas, step execution, and the dispatcher."""
