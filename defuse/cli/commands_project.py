"""The CLI's subcommands: argument definitions and a thin call into :mod:`defuse.steps.project`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace

from ..data.datasets import DatasetSpec
from ..nets.train import TrainConfig, VAEConfig, fidelity_warning, parse_class_keep
from ..nets.vae_recipe import MIN_STEPS, SMALL_BATCH, SMALL_SOURCE, default_vae_config
from ..steps import project, status
from .args import (
    CommandTable,
    add_setting_flags,
    config_from_args,
    open_workspace,
    read_config,
    resolve_workspace,
    setting_values,
    status_lines,
)

COMMANDS = CommandTable()  # this module's commands; defuse.cli.main lists the tables
register = COMMANDS.register


def _no_workspace(fn):
    fn.needs_workspace = False
    return fn


# --- init ---------------------------------------------------------------------------------------
def add_dataset_args(p: argparse.ArgumentParser) -> None:
    # --dataset, --root, --path, --test-path, --size, --download, --data-seed
    add_setting_flags(p.add_argument_group("data"), DatasetSpec, config=False)


def dataset_spec_from_args(args) -> DatasetSpec:
    return DatasetSpec(**setting_values(args, DatasetSpec))


@_no_workspace
def _init_args(p):
    p.add_argument("--workspace", "-w", required=True, help="project folder, or a name under DEFUSE_HOME")
    add_dataset_args(p)
    p.add_argument("--classifier", default=None,
                   help="the classifier to debug: safetensors (safe), a .pt state dict, or TorchScript / torch.export "
                        "/ a full pickle (these carry code: refused unless you pass --trust-code)")
    add_architecture_args(p)
    p.add_argument("--vae", default=None, help="a Defuse β-VAE checkpoint (.json/.safetensors)")
    p.add_argument("--demo-models", action="store_true", help="use the demo classifier and VAE in models/")
    p.add_argument("--force", action="store_true", help="replace the settings of an existing workspace")


def add_architecture_args(p) -> None:
    p.add_argument("--architecture", default=None,
                   help="the network of bare weights: paper-cnn, resnet18, or your own class as module:Class "
                        "(e.g. my_nets:SignNet; the module must be importable)")
    p.add_argument("--arch-kwargs", type=_json_object, default=None,
                   help="JSON constructor arguments beyond the data's channels, image size and classes, "
                        "e.g. '{\"width\": 64}'")


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON ({e.msg}): give an object like '{{\"width\": 64}}'") from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object like '{{\"width\": 64}}'; got {text!r}")
    return value


def _init(args, sink):
    classifier, vae = args.classifier, args.vae
    if args.demo_models:
        classifier, vae = classifier or project.DEMO_CLASSIFIER, vae or project.DEMO_VAE
    ws = project.init_project(resolve_workspace(args.workspace), dataset_spec_from_args(args),
                              classifier=classifier, architecture=args.architecture, arch_kwargs=args.arch_kwargs,
                              vae=vae, trust_code=args.trust_code, force=args.force)
    return f"created {ws.root}\n" + status_lines(ws)


register("init", "create a project workspace for a dataset (and import a classifier / VAE)", _init_args, _init)


# --- training ---------------------------------------------------------------------------------------
def _train_classifier_args(p):
    add_setting_flags(p, TrainConfig)
    p.add_argument("--class-keep", default=None, help="e.g. '9:0.1' trains on 10%% of class 9 (plants a flaw)")


def _train_classifier(args, sink):
    flags = setting_values(args, TrainConfig)
    if args.class_keep:
        flags["class_keep"] = parse_class_keep(args.class_keep)
    cfg = config_from_args(args, TrainConfig, flags=flags)
    ws = open_workspace(args)
    record = project.train_classifier_step(ws, cfg, device=args.device, on_progress=sink)
    m = record["metrics"]
    return (f"classifier trained: test accuracy {m['test_acc']:.2%}, validation {m['val_acc']:.2%}, "
            f"{m['seconds_per_epoch']:.1f} s/epoch")


register("train-classifier", "train the project's classifier (paper appendix B.2)",
         _train_classifier_args, _train_classifier)


def _train_vae_args(p):
    d = VAEConfig()
    add_setting_flags(p, VAEConfig, skip=("epochs", "batch_size"))
    p.add_argument("--epochs", default=None, help=f"training epochs (default: enough for {MIN_STEPS:,} steps on "
                   "this data, e.g. digits: 141 at batch 32; mnist-sample: 200 at batch 128)")
    p.add_argument("--batch-size", default=None, help=f"images per step (default: {d.batch_size}, or {SMALL_BATCH} "
                   f"for sources under {SMALL_SOURCE:,} images)")


def _train_vae(args, sink):
    flags = setting_values(args, VAEConfig)
    given = read_config(args.config, VAEConfig) if args.config else {}
    base = config_from_args(args, VAEConfig, flags=flags)
    ws = open_workspace(args)
    recipe = default_vae_config(project.load_data(ws), base)  # epochs and batch that fit the data's size
    cfg = replace(base, **{k: getattr(recipe, k) for k in ("epochs", "batch_size") if k not in {**flags, **given}})
    m = project.train_vae_step(ws, cfg, device=args.device, on_progress=sink)["metrics"]
    lines = [f"VAE trained: loss {m['loss']:.2f} (reconstruction {m['recon']:.2f}, KL {m['kl']:.2f}), "
             f"{m['seconds_per_epoch']:.1f} s/epoch, {m.get('steps_per_s', 0):.1f} steps/s"]
    if m.get("stopped_early"):
        lines.append(f"stopped after {m['steps']:,} of {cfg.epochs * -(-m['n_images'] // cfg.batch_size):,} steps: "
                     "the validation fidelity passed the gate and stopped improving (--no-early-stop trains on)")
    if "acc_reconstruction" in m:
        lines.append(f"fidelity: classifier accuracy {m['acc_reconstruction']:.1%} on reconstructions vs "
                     f"{m['acc_original']:.1%} on originals; {m['active_dims']} of {m['latent_dim']} dims active")
    if m.get("class_control_classifier") is not None:
        lines.append(f"class control: decoded with another label, {m['class_control_classifier']:.1%} of images "
                     "are read as that label by the classifier")
    warning = fidelity_warning(m, asdict(cfg))
    if warning:
        lines.append("WARNING: " + warning)
    return "\n".join(lines)


register("train-vae", "train the project's β-VAE and measure its fidelity", _train_vae_args, _train_vae)


# --- info -------------------------------------------------------------------------------------------
def _info_args(p):
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _info(args, sink):
    ws = open_workspace(args)
    info = status.project_info(ws)
    if args.json:
        return info
    lines = [f"workspace {ws.root}", f"dataset   {info['dataset']}"]
    if "data" in info:
        lines.append(f"data      {info['data']}")
    for step in ("classifier", "vae"):
        if f"{step}_metrics" in info:
            lines.append(f"{step:<9} {info[f'{step}_metrics']}")
    lines += ["steps:", status_lines(ws)] + [f"WARNING: {w}" for w in info["warnings"]]
    return "\n".join(lines)


register("info", "what the workspace holds and what is stale", _info_args, _info)


# --- demo -------------------------------------------------------------------------------------------
@_no_workspace
def _demo_args(p):
    p.add_argument("--rebuild", action="store_true",
                   help="train the demo classifier and VAE on mnist-sample, run the demo's first-look steps "
                        "(identify, distill, maps, reviewer) and write it all into models/")
    p.add_argument("--precomputed-only", action="store_true",
                   help="with --rebuild: keep the models, remake only models/demo-precomputed from them")
    p.add_argument("--workspace", "-w", default="demo", help="the demo project to (re)create from models/")
    p.add_argument("--vae-epochs", type=int, default=None, help="override the demo VAE's epochs (testing)")
    p.add_argument("--classifier-epochs", type=int, default=None)
    p.add_argument("--out", default=None, help="where --rebuild writes (default: models/)")
    p.add_argument("--only", default=None,
                   help="with --rebuild --precomputed-only: remake just these first-look groups, comma-separated "
                        "(identify, distill, map, reviewer); the others are kept, verified")


def _demo(args, sink):
    from ..steps import demo

    if args.rebuild:
        from ..steps.demo_precomputed import build_precomputed

        summary = {} if args.precomputed_only else demo.rebuild_demo_models(
            out=args.out, vae_epochs=args.vae_epochs, classifier_epochs=args.classifier_epochs,
            device=args.device, on_progress=sink)
        if args.only and not args.precomputed_only:
            raise ValueError("--only remakes part of models/demo-precomputed: give it with --precomputed-only")
        only = tuple(g.strip() for g in args.only.split(",") if g.strip()) if args.only else None
        manifest = build_precomputed(args.out, device=args.device, on_progress=sink, only=only)
        return {**summary, "precomputed": {g: {k: v for k, v in e.items() if k != "config"}
                                           for g, e in manifest["groups"].items()},
                "precomputed_seconds": manifest["seconds"]}
    ws = demo.open_demo_project(resolve_workspace(args.workspace))
    return f"demo project ready at {ws.root}\n" + status_lines(ws)


register("demo", "create the demo project (or --rebuild the demo models)", _demo_args, _demo)


# --- convert ----------------------------------------------------------------------------------------
@_no_workspace
def _convert_args(p):
    p.add_argument("source", nargs="?", default=None,
                   help="the TorchScript / torch.export / pickle / bare-weights file to convert")
    p.add_argument("--workspace", "-w", default=None,
                   help="convert this project's classifier in place (instead of SOURCE and --out)")
    p.add_argument("--out", default=None, help="where to write NAME.safetensors + NAME.json")
    p.add_argument("--input-shape", default=None,
                   help="C,H,W of the images the classifier takes (default: the project's; needed without -w)")
    add_architecture_args(p)


def _convert(args, sink):
    from ..nets.convert import convert_classifier

    if not args.architecture:
        raise ValueError("name the network the file was made from: --architecture paper-cnn, resnet18 or "
                         "module:Class of your own code")
    if args.workspace:
        if args.source or args.out:
            raise ValueError("give either -w (convert the project's classifier in place) or SOURCE with --out")
        ws = open_workspace(args)
        project.convert_classifier_in_place(ws, args.architecture, arch_kwargs=args.arch_kwargs,
                                            trust_code=args.trust_code, device=args.device)
        return f"converted the classifier of {ws.root} to safetensors + {args.architecture}\n" + status_lines(ws)
    if not args.source or not args.out:
        raise ValueError("give the file to convert and --out DEST (or -w to convert a project's classifier)")
    meta = convert_classifier(args.source, args.out, architecture=args.architecture,
                              input_shape=_input_shape(args.input_shape), arch_kwargs=args.arch_kwargs,
                              trust_code=args.trust_code)
    return (f"wrote {meta['weights_file']} and its sidecar: {args.architecture} with {meta['arch_kwargs']}; "
            f"outputs match the original within {meta['converted_from']['max_output_gap']:.2g}")


def _input_shape(text) -> tuple:
    try:
        shape = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--input-shape must be C,H,W such as 3,32,32; got {text!r}")
    return shape


register("convert", "turn a trusted TorchScript / torch.export / pickle classifier into safetensors + "
         "its architecture (safe to load, fine-tunable)", _convert_args, _convert)
