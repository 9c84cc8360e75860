"""The N:M sparse systolic array: config (:mod:`.config`), Verilog generator (:mod:`.verilog`), cycle model
(:mod:`.perf`)."""
