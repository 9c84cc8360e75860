"""Runs inside the SCALE-Sim venv (``build/scalesim-venv``), never in the project's: imports only scalesim.

``python scalesim_runner.py full|compute CFG TOPO.csv LAYOUT.csv OUTDIR [gemm|conv]``

The topology is a GEMM one (``-i gemm``, the default) or a convolution one (``conv``).

- ``full``: ``scalesim(...).run_scale(OUTDIR)``, as ``python -m scalesim.scale -c CFG -t TOPO -l LAYOUT -p OUTDIR
  -i gemm`` does, but without writing the per-cycle SRAM/DRAM traces (``save_disk_space=True``; the CLI
  always writes them). Reports: ``OUTDIR/<run_name>/COMPUTE_REPORT.csv`` and friends.
- ``compute``: only SCALE-Sim's operand-matrix and systolic-compute stages of ``single_layer_sim.run()``,
  skipping the cycle-by-cycle memory simulation (the slow part: ~150-300 µs per simulated cycle on a
  32-column array). Writes ``OUTDIR/COMPUTE_ONLY_REPORT.csv`` with the compute-report columns SCALE-Sim computes
  without the memory system. Its cycle count is SCALE-Sim's ``len(demand matrix) - 1``, which equals the
  full run's compute cycles whenever the memory system adds no stalls (always, with ``InterfaceBandwidth =
  CALC``); ``tests/gemm/test_scalesim_ref.py`` checks that the two modes agree.
"""

import sys


def compute_only(cfg, topo, layout, outdir, gemm):
    from scalesim.scale_sim import scalesim
    from scalesim.single_layer_sim import single_layer_sim

    s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                 input_type_gemm=gemm)
    lines = ["LayerID, Total Cycles, Overall Util %, Mapping Efficiency %, Compute Util %,"]
    for lid in range(s.topo.get_num_layers()):
        layer = single_layer_sim()
        layer.set_params(layer_id=lid, config_obj=s.config, topology_obj=s.topo, layout_obj=s.layout,
                         verbose=False)
        # The same calls, in the same order, as single_layer_sim.run() steps 1.1-1.4 (scalesim 3.0.0).
        _, ifmap = layer.op_mat_obj.get_ifmap_matrix()
        _, filt = layer.op_mat_obj.get_filter_matrix()
        _, ofmap = layer.op_mat_obj.get_ofmap_matrix()
        extra = {}
        if layer.dataflow == "ws":
            extra = dict(sparsity_ratio_N=layer.sparsity_ratio_N, sparsity_ratio_M=layer.sparsity_ratio_M,
                         ifmap_op_mat_original=layer.op_mat_obj.ifmap_addr_matrix_original,
                         sparsity_filter_array=layer.op_mat_obj.sparse_filter_array)
        layer.compute_system.set_params(config_obj=s.config, ifmap_op_mat=ifmap, filter_op_mat=filt,
                                        ofmap_op_mat=ofmap, **extra)
        _, _, ofmap_demand = layer.compute_system.get_demand_matrices()
        cycles = ofmap_demand.shape[0] - 1
        num_compute = s.topo.get_layer_num_ofmap_px(lid) * s.topo.get_layer_window_size(lid)
        util = num_compute * 100 / (cycles * layer.num_mac_unit)
        lines.append(f"{lid}, {cycles}, {util}, {layer.compute_system.get_avg_mapping_efficiency() * 100}, "
                     f"{layer.compute_system.get_avg_compute_utilization() * 100},")
    with open(f"{outdir}/COMPUTE_ONLY_REPORT.csv", "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv):
    mode, cfg, topo, layout, outdir, *kind = argv
    gemm = (kind or ["gemm"])[0] == "gemm"
    if mode == "full":
        from scalesim.scale_sim import scalesim
        scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                 input_type_gemm=gemm).run_scale(top_path=outdir)
    elif mode == "compute":
        compute_only(cfg, topo, layout, outdir, gemm)
    else:
        raise SystemExit(f"unknown mode {mode!r}: allowed full, compute")


if __name__ == "__main__":
    main(sys.argv[1:])
