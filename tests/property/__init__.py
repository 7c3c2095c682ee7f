"""Property-based tests (Hypothesis) of the sans-I/O core, the request handler and the fuzzer."""
