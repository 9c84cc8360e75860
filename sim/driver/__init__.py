"""Host-side drivers: turn workloads into the jobs the generated hardware runs, and back."""
