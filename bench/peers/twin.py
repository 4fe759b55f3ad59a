"""What every PyTorch twin shares with `sharpformer bench`: the common options and the figures it prints."""
import argparse
import json
import resource


def options(presets, preset, data=None, data_help=None):
    """The options of every twin (a twin adds its own to the parser before parse_args)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default=preset, choices=presets)
    ap.add_argument("--data", default=data, help=data_help)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seed", type=int, default=1337)
    return ap


def report(as_json, train_tokens_per_s, ms_per_step, gflops, train_examples_per_s=None, sample_tokens_per_s=None):
    """Prints the figures under `sharpformer bench --json`'s names (those PyTorch cannot tell are null), with this
    process's peak resident memory; one JSON object with as_json, else a line each."""
    r = {"train_tokens_per_s": train_tokens_per_s}
    if train_examples_per_s is not None:
        r["train_examples_per_s"] = train_examples_per_s
    r.update({"ms_per_step": ms_per_step, "gflops": gflops, "peak_gflops": None, "peak_fraction": None, "alloc_bytes_per_step": None,
              "peak_working_set_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "sample_tokens_per_s": sample_tokens_per_s})
    if as_json:
        print(json.dumps(r))
    else:
        for k, v in r.items():
            print(f"{k}: {v}")
