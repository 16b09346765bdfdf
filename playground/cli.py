"""Command line: generate, export, gallery, prune, db, methods, models, bench. A stable contract: tests and users script
against it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

from playground.errors import OneLineParser, PlaygroundError

# The commands import the engine (torch, transformers: seconds) inside, so that `--help` and argument errors answer
# at once; the layers (pyproject's import-linter contracts) count these imports all the same.

NOT_STORED = 3  # generate's exit status when the run decoded and printed its result, but the database failed


def cmd_generate(args) -> int:
    from playground.engine import Request, generate
    from playground.events import RunFinished, Step
    from playground.methods import parse_params
    from playground.models.loading import load
    from playground.storage.degraded import open_for_runs
    from playground.storage.recorder import db_path
    from playground.storage.retention import Retention

    req = Request(prompt=args.prompt, model=args.model, method=args.method, draft=args.draft,
                  max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                  top_p=args.top_p, seed=args.seed, params=parse_params(args.param), runtime=args.runtime)
    events = generate(req)  # validates before anything is stored
    recorder = open_for_runs(db_path(args.db), retention=Retention.from_env())  # a failing one: runs unstored
    started = finished = None
    tokenizer, ids, shown, steps = load(req.model).tokenizer, [], "", []
    for ev in recorder.record(events):
        if isinstance(ev, Step):
            steps.append(ev)
            if args.json:
                continue
            ids += ev.tokens
            text = tokenizer.decode(ids, skip_special_tokens=True)  # the whole output: BPE pieces may split a
            if not text.endswith("\ufffd"):  # character, which shows as U+FFFD until its last byte comes
                print(text[len(shown):], end="", flush=True)
                shown = text
        elif isinstance(ev, RunFinished):
            finished = ev
        elif started is None:
            started = ev
    if not args.json and finished.text != shown:  # a character left incomplete at the end
        print(finished.text[len(shown):], end="", flush=True)
    if finished.status == "error":
        raise PlaygroundError(f"run {finished.run_id or '(not stored)'} failed: {finished.error}")
    if args.json:
        print(json.dumps({"run_id": finished.run_id, "method": started.method, "model": started.model,
                          "draft": started.draft, "text": finished.text, "token_ids": finished.token_ids,
                          "stats": asdict(finished.stats), "theory": _theory(steps),
                          "not_stored": finished.not_stored}))
    else:
        s = finished.stats
        print(f"\n\n[run {finished.run_id or '(not stored)'}: {s.new_tokens} tokens, {s.tokens_per_s:.1f} tokens/s, "
              f"{s.mean_accepted:.2f} tokens per target forward]", file=sys.stderr)
    if finished.not_stored:  # after the result: the run is whole, only its record is missing
        print(f"warning: run not stored: the run database {recorder.path!r} failed: {finished.not_stored} "
              f"(exit status {NOT_STORED})", file=sys.stderr)
        return NOT_STORED
    return 0


def _theory(steps: list) -> dict | None:
    """What theory predicts for the run's drafts (playground.theory), or None where it has no theory."""
    from playground.analysis import theory
    prediction = theory.predict(steps)
    if prediction is None:
        return None
    return {"kind": prediction.kind, "alpha": prediction.alpha, "tokens_per_forward": prediction.measured,
            "predicted_tokens_per_forward": prediction.predicted}


def cmd_export(args) -> int:
    from playground.storage.recorder import Recorder, db_path
    recorder = Recorder(db_path(args.db), create=False)
    if args.html is None:
        print(json.dumps(recorder.export(args.run_id), indent=2))
        return 0
    from playground.share.page import export_html
    path = export_html(recorder, args.run_id, args.html)
    print(f"wrote run {args.run_id} to {path} ({path.stat().st_size / 1e6:.1f} MB): open it in a browser, offline")
    return 0


def cmd_gallery(args) -> int:
    from playground.share.gallery import write_gallery
    from playground.storage.recorder import Recorder, db_path
    index = write_gallery(Recorder(db_path(args.db), create=False), args.run_ids, args.out)
    print(f"wrote {index} and {len(args.run_ids)} run page{'s' * (len(args.run_ids) != 1)} beside it: host the "
          f"folder anywhere (a static Space included)")
    return 0


def cmd_prune(args) -> int:
    from playground.storage.recorder import Recorder, db_path
    from playground.storage.retention import Retention
    retention = Retention.from_env(args.days, args.mb)
    if not retention.limited:
        raise PlaygroundError("say what to keep: --days N and/or --mb M (or $PLAYGROUND_KEEP_DAYS / _MB)")
    removed = Recorder(db_path(args.db), create=False).prune(retention)
    print(f"removed {len(removed)} run{'s' * (len(removed) != 1)}" + (f" ({removed[0]}..{removed[-1]})" if removed
                                                                        else ""))
    return 0


def cmd_db_upgrade(args) -> int:
    from playground.storage.database import db_path, shown, upgrade
    target = db_path(args.db)
    before, head = upgrade(target)
    was = "already" if before == head else f"was {before}" if before else "was empty"
    print(f"run database {shown(target)}: at revision {head} ({was})")
    return 0


def cmd_methods(args) -> int:
    from playground.methods import METHODS
    rows = [{"name": m.name, "summary": m.summary, "needs_draft": m.needs_draft, "uses_draft": m.uses_draft is not None,
             "default_pair": default_pair(m) if m.needs_draft else None,
             "lossless": m.lossless, "params": [asdict(p) for p in m.params]} for m in METHODS.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for m in rows:
        paired = f", by default {m['default_pair'][1]} with {m['default_pair'][0]}" if m["default_pair"] else ""
        draft = (f" (needs a draft: --draft{paired})" if m["needs_draft"] else
                 " (uses a draft model when there is one)" if m["uses_draft"] else "")
        print(f"{m['name']}{draft}: {m['summary']}")
        for p in m["params"]:
            bounds = f" [{p['min']}..{p['max']}]" if p["min"] is not None else ""
            print(f"    {p['name']}={p['default']}{bounds}  {p['help']}")
    return 0


def default_pair(method) -> tuple[str, str] | None:
    """(shipped model, the draft a run of `method` on it gets when none is named), or None."""
    from playground.models.loading import DEFAULT_DRAFTS, DEFAULT_MODEL, draft_for, shipped_kind
    target = DEFAULT_MODEL if "causal" in method.kinds else next(
        (name for name in DEFAULT_DRAFTS if shipped_kind(name) in method.kinds), None)
    draft = draft_for(target, None, method.draft_kinds[0]) if target else None
    return (target, draft) if draft else None


def cmd_models(args) -> int:
    from playground.models.loading import describe_models
    rows = describe_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        loss = f", held-out loss {r['heldout_loss']:.3f} nats/token" if r["heldout_loss"] else ""
        params = f", {r['parameters'] / 1e6:.1f}M parameters" if r["parameters"] else ""
        print(f"{r['name']}: {r['architecture']}, {r['layers']} layers x {r['hidden_size']}{params}{loss}")
    print("Any Hugging Face Hub id or local folder of a causal LM, masked LM or encoder-decoder also works (the Hub "
          "needs network access).")
    return 0


def cmd_bench(args) -> int:
    from playground.bench.benchmark import main as bench_main
    return bench_main(args)


RUNTIME_HELP = ("what runs the models: auto (default: the lean runtime for Llama, Qwen2 and Mistral models and "
                "EuroBERT masked LMs, "
                "transformers for the rest), lean, or transformers")
DEVICE_HELP = "where the models run: cpu (default), cuda, cuda:N or mps (else $PLAYGROUND_DEVICE)"


def build_parser() -> argparse.ArgumentParser:
    from playground.models.loading import DEFAULT_MODEL
    parser = OneLineParser(prog="python -m playground", description="Decoding Playground command line")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="decode one prompt with one method, record it, print the result")
    g.add_argument("--model", default=DEFAULT_MODEL)
    g.add_argument("--method", default="autoregressive")
    g.add_argument("--draft")
    g.add_argument("--prompt", required=True)
    g.add_argument("--max-new-tokens", type=int, default=128)
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--param", action="append", metavar="KEY=VALUE", help="method parameter (repeatable)")
    g.add_argument("--db")
    g.add_argument("--json", action="store_true")
    g.add_argument("--runtime", default="auto", help=RUNTIME_HELP)
    g.add_argument("--device", help=DEVICE_HELP)
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("export", help="print a stored run with all its steps as JSON, or write it as one HTML page")
    e.add_argument("run_id", type=int)
    e.add_argument("--html", metavar="FILE",
                   help="instead: write FILE, one self-contained page that replays the run offline (its views, "
                        "charts and players as the app's History shows them; Plotly.js inlined; no network)")
    e.add_argument("--db", help="the run database to read; it must exist (else $PLAYGROUND_DB, else playground.db)")
    e.set_defaults(func=cmd_export)

    ga = sub.add_parser("gallery", help="write a static site of stored runs: index.html and one page per run")
    ga.add_argument("run_ids", type=int, nargs="+", metavar="RUN", help="the runs to show, in this order")
    ga.add_argument("--out", required=True, metavar="DIR",
                    help="the folder to write (made if missing): index.html listing the runs (model, method, "
                         "speedup), run-N.html per run (as export --html writes it) and a README.md for a static "
                         "Hugging Face Space; no server needed")
    ga.add_argument("--db", help="the run database to read; it must exist (else $PLAYGROUND_DB, else playground.db)")
    ga.set_defaults(func=cmd_gallery)

    pr = sub.add_parser("prune", help="remove old runs: older than --days, then the oldest beyond --mb of storage")
    pr.add_argument("--days", type=float, help="remove runs older than this many days")
    pr.add_argument("--mb", type=float, help="then remove the oldest runs while the rest weigh more than this")
    pr.add_argument("--db", help="the run database (else $PLAYGROUND_DB, else playground.db); it must exist")
    pr.set_defaults(func=cmd_prune)

    dbs = sub.add_parser("db", help="the run database: `db upgrade` makes it or brings its schema to the newest "
                                    "migration (the app and every command also do when they open it)")
    dbs.add_argument("action", choices=["upgrade"])
    dbs.add_argument("--db", help="a SQLite file or a SQLAlchemy URL (else $PLAYGROUND_DB, else playground.db)")
    dbs.set_defaults(func=cmd_db_upgrade)

    m = sub.add_parser("methods", help="list decoding methods with their parameters")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_methods)

    ms = sub.add_parser("models", help="list shipped models")
    ms.add_argument("--json", action="store_true")
    ms.set_defaults(func=cmd_models)

    b = sub.add_parser("bench", help="compare methods on a prompt suite or file, side by side in one process")
    b.add_argument("--model", default=DEFAULT_MODEL)
    b.add_argument("--draft")
    b.add_argument("--methods", default="autoregressive,speculative",
                   help="comma-separated methods and peers; METHOD:KEY=VALUE[:KEY=VALUE] runs a method with its own "
                        "parameters, so one method can be compared with itself (e.g. speculative:gamma=2,"
                        "speculative:schedule=heuristic); METHOD@MODEL runs it on another model, without the draft "
                        "(e.g. dag@tiny-numbers-dat:strategy=viterbi next to autoregressive on tiny-numbers-ar)")
    b.add_argument("--prompts", required=True, metavar="SUITE_OR_FILE",
                   help="a prompt suite (complete, repeat, edit, docstring, dependent, numbers: "
                        "assets/prompts/SUITE.jsonl) or a JSONL file, one object with a 'prompt' field per line "
                        "(and optionally 'answer', the start a correct continuation has, or 'references', every "
                        "correct output: rows then show accuracy and BLEU)")
    b.add_argument("--baseline", metavar="SPEC",
                   help="what speedups and identity are measured against (default: autoregressive; on a diffusion "
                        "model diffusion:strategy=fixed_steps, one token per forward)")
    b.add_argument("--max-new-tokens", type=int, default=128)
    b.add_argument("--limit", type=int, help="use only the first N prompts (N >= 1)")
    b.add_argument("--repeats", type=int, default=1, help="rounds over all prompts (more = steadier timings)")
    b.add_argument("--param", action="append", metavar="KEY=VALUE", help="method parameter (repeatable)")
    b.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    b.add_argument("--recording-overhead", action="store_true",
                   help="instead: time each method with and without the SQLite recorder")
    b.add_argument("--forward-costs", action="store_true",
                   help="instead: time one target and one draft forward over 0-64 draft-tree nodes (after the "
                        "first prompt; --repeats timings each, median)")
    b.add_argument("--runtime", default="auto",
                   help=RUNTIME_HELP + "; a method spec's runtime=... overrides it; --forward-costs times both unless "
                                       "one is named")
    b.add_argument("--db", help="database for --recording-overhead")
    b.add_argument("--device", help=DEVICE_HELP)
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "device", None):
            from playground.models.loading import use_device
            use_device(args.device)
        return args.func(args)
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head` stopped reading: stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush must not fail again
        return 141
