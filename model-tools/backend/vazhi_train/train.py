"""LoRA training on sequences prepared by `model-tools prepare-data`, supervised by
`model-tools train`.

Plain PyTorch + transformers + PEFT (no TRL). Every event is one JSON object per line on stdout
(`start`, `step`, `sample`, `checkpoint`, `diverged`, `interrupted`, `done`, `error`); human
messages go to stderr. Checkpoints every `--checkpoint-every` steps and on SIGINT/SIGTERM,
written to a temporary directory and renamed; `--resume` continues from the last one with the
same data order.

Under `torchrun` (WORLD_SIZE > 1) every rank trains a slice of each global batch through DDP;
every rank prints its own `step` events (with `rank`) for the supervisor to aggregate, and rank
0 alone prints the rest, generates the check answers and writes checkpoints.
"""
import argparse
import json
import math
import os
import random
import shutil
import signal
import sys
import time

# Steps left out of the steady-state throughput (allocator warm-up, kernel selection).
TIMING_WARMUP_STEPS = 3


def emit(event, **fields):
    # JSON has no NaN or infinity (Python would print bare `NaN`, which parsers refuse): such a
    # value becomes null, with its text beside it (`loss_text: "nan"`).
    for key, value in list(fields.items()):
        if isinstance(value, float) and not math.isfinite(value):
            fields[key] = None
            fields[key + "_text"] = repr(value)
    fields["event"] = event
    # One write of one line: lines from several ranks sharing the pipe stay whole.
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def lora_defaults(parameters):
    """Rank and alpha by model size: small models are corrupted by large ranks."""
    if parameters < 1_000_000_000:
        return 8, 16
    if parameters < 4_000_000_000:
        return 16, 32
    return 32, 64


def read_sequences(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def global_batches(count, size, epoch, seed, world):
    """Index lists of one epoch, shuffled by (seed, epoch) alone, so a resumed run sees the
    same order. With several ranks, which must all get data, a last batch that does not divide
    among them is padded from the start of the order to a multiple of the world size, as
    torch's DistributedSampler pads."""
    order = list(range(count))
    random.Random(seed + epoch).shuffle(order)
    for start in range(0, count, size):
        batch = order[start : start + size]
        short = -len(batch) % world
        batch = batch + [order[i % count] for i in range(short)]
        yield batch


def collate(batch, torch, device):
    width = max(len(s["input_ids"]) for s in batch)
    # Padding positions are masked out of attention and carry label -100, so the pad id
    # never reaches the loss: a tokenizer whose pad token is EOS cannot teach the model to
    # never stop (the failure that setting pad = eos causes in collators that label pads).
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, s in enumerate(batch):
        n = len(s["input_ids"])
        ids[row, :n] = torch.tensor(s["input_ids"])
        labels[row, :n] = torch.tensor(s["labels"])
        mask[row, :n] = 1
    return ids.to(device), labels.to(device), mask.to(device)


def save_atomically(directory, write):
    temp = directory + ".partial"
    shutil.rmtree(temp, ignore_errors=True)
    os.makedirs(temp)
    write(temp)
    old = directory + ".old"
    if os.path.exists(directory):
        os.replace(directory, old)
    os.replace(temp, directory)
    shutil.rmtree(old, ignore_errors=True)


def save_trainer_state(torch, path, optimizer, scheduler, step, ema, cuda_device):
    """What `--resume` needs beside the adapter, as tensors and plain values only, so that
    `load_trainer_state` can read it back without unpickling objects. LambdaLR's state leaves
    the schedule out (`lr_lambdas: [None]` for a plain function); the schedule is rebuilt from
    the arguments."""
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "step": step, "ema": ema, "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(cuda_device) if cuda_device else None},
               path)


def load_trainer_state(torch, path, device):
    """The state `save_trainer_state` wrote. A checkpoint is a file that whoever can write the
    output directory can replace, and a full unpickle runs whatever code the file names:
    `weights_only=True` rebuilds tensors and plain containers only and refuses anything else
    (an explicit True also holds under TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD)."""
    import pickle

    try:
        return torch.load(path, weights_only=True, map_location=device)
    except pickle.UnpicklingError as error:
        # torch's message opens with advice to load with weights_only=False; keep only the
        # line that names what was refused ("Trying to load unsupported GLOBAL posix.system…").
        reason = type(error).__name__
        for line in str(error).splitlines():
            line = line.split("WeightsUnpickler error:", 1)[-1].strip()
            if line and not line.startswith(("Weights only load failed", "Check the documentation")):
                reason = line
                break
        raise RuntimeError(
            "refusing to resume from {}: it holds more than tensors and plain values, and "
            "loading it could run code ({}). Delete the checkpoint directory and train from "
            "the start, or from a checkpoint you wrote yourself".format(path, reason)) from None


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--stage", choices=["dapt", "sft"], required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per GPU per micro-batch")
    parser.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    parser.add_argument("--lr", type=float, default=0.0)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.0)
    parser.add_argument("--warmup", type=float, default=0.05)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--checks", default="", help="JSON file of check prompts (token ids)")
    parser.add_argument("--check-every", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--snapshots", action="store_true",
                        help="also copy each checkpoint's adapter to snapshots/step-N for the supervisor")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--spike", type=float, default=3.0,
                        help="stop when the loss exceeds this many times its moving average (and by > 1.0)")
    return parser.parse_args(argv)


class Distributed:
    """The process group under torchrun, or a single process."""

    def __init__(self, torch):
        self.torch = torch
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1:
            if torch.cuda.is_available():
                torch.cuda.set_device(self.local_rank)
                torch.distributed.init_process_group("nccl")
            else:  # several CPU processes: slow, but how DDP is tested without GPUs
                torch.distributed.init_process_group("gloo")

    @property
    def main(self):
        return self.rank == 0

    def mean(self, value, device):
        if self.world == 1:
            return value
        t = self.torch.tensor([value], dtype=self.torch.float64, device=device)
        self.torch.distributed.all_reduce(t)
        return float(t) / self.world

    def any(self, flag, device):
        if self.world == 1:
            return flag
        t = self.torch.tensor([1 if flag else 0], dtype=self.torch.int32, device=device)
        self.torch.distributed.all_reduce(t, op=self.torch.distributed.ReduceOp.MAX)
        return bool(int(t))

    def barrier(self):
        if self.world > 1:
            self.torch.distributed.barrier()

    def close(self):
        if self.world > 1:
            self.torch.distributed.destroy_process_group()


def generate_checks(peft_model, checks, torch, device, gradient_checkpointing):
    """Greedy answers to the check prompts; token ids only — the supervisor decodes and
    scores them with the same scorer as `model-tools eval`."""
    if gradient_checkpointing:
        # Checkpointing is for backward passes; generation needs the KV cache it disables.
        peft_model.base_model.model.gradient_checkpointing_disable()
    peft_model.eval()
    answers = []
    with torch.no_grad():
        for prompt in checks["prompts"]:
            ids = torch.tensor([prompt["input_ids"]], dtype=torch.long, device=device)
            out = peft_model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=prompt.get("max_new_tokens", checks.get("max_new_tokens", 128)),
                do_sample=False,
                use_cache=True,
                eos_token_id=checks["stop_ids"] or None,
                pad_token_id=(checks["stop_ids"] or [0])[0],
            )
            answers.append((prompt["id"], out[0, ids.shape[1]:].tolist()))
    peft_model.train()
    if gradient_checkpointing:
        peft_model.base_model.model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False})
    return answers


def main(argv=None):
    args = parse_args(argv)

    import torch
    import transformers
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    dist = Distributed(torch)
    torch.manual_seed(args.seed)
    cuda = torch.cuda.is_available()
    device = "cuda:{}".format(dist.local_rank) if cuda else "cpu"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32  # never fp16

    major_minor = tuple(int(x) for x in transformers.__version__.split(".")[:2])
    dtype_arg = "dtype" if major_minor >= (4, 56) else "torch_dtype"
    model = AutoModelForCausalLM.from_pretrained(args.model, attn_implementation="sdpa",
                                                 **{dtype_arg: dtype})
    model.config.use_cache = False  # training; generation turns it on per call
    parameters = sum(p.numel() for p in model.parameters())
    rank, alpha = lora_defaults(parameters)
    rank = args.rank or rank
    alpha = args.alpha or alpha
    lr = args.lr or (2e-4 if args.stage == "dapt" else 2e-5)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    checkpoint = os.path.join(args.out, "checkpoint")
    if dist.main and not os.path.isdir(checkpoint) and os.path.isdir(checkpoint + ".old"):
        os.replace(checkpoint + ".old", checkpoint)  # a crash between the two renames
    dist.barrier()
    if args.resume and os.path.isdir(checkpoint):
        # The backend writes safetensors only; without that file PEFT would unpickle an
        # adapter_model.bin, which is no file of ours.
        if not os.path.isfile(os.path.join(checkpoint, "adapter_model.safetensors")):
            raise RuntimeError("refusing to resume from {}: it has no adapter_model.safetensors"
                               .format(checkpoint))
        peft_model = PeftModel.from_pretrained(model, checkpoint, is_trainable=True)
    else:
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.05, target_modules=targets,
                            bias="none", task_type="CAUSAL_LM")
        peft_model = get_peft_model(model, config)
    peft_model.to(device)
    peft_model.train()
    # Different dropout masks on each rank (the LoRA initialisation above is the same on all).
    torch.manual_seed(args.seed + dist.rank)
    trainer_model = peft_model
    if dist.world > 1:
        trainer_model = torch.nn.parallel.DistributedDataParallel(
            peft_model, device_ids=[dist.local_rank] if cuda else None)

    sequences = read_sequences(args.data)
    per_rank = args.batch_size
    global_size = per_rank * dist.world * args.grad_accum
    if not sequences:
        emit("error", message="no sequences in " + args.data)
        return 2
    per_epoch = math.ceil(len(sequences) / global_size)
    total = args.max_steps or per_epoch * args.epochs
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0, fused=cuda)
    warmup = max(1, int(total * args.warmup))

    def schedule(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    step = 0
    ema = None
    state_file = os.path.join(checkpoint, "trainer_state.pt")
    if args.resume and os.path.exists(state_file):
        state = load_trainer_state(torch, state_file, device)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]
        ema = state.get("ema")
        # Dropout continues from the same random state: a resumed run repeats the
        # uninterrupted one step for step (on one GPU; ranks > 0 restart their streams).
        if state.get("rng") is not None:
            torch.set_rng_state(state["rng"].cpu())
        if cuda and state.get("cuda_rng") is not None and dist.main:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)

    checks = None
    if args.checks and dist.main:
        with open(args.checks, encoding="utf-8") as f:
            checks = json.load(f)

    stop = {"signal": None}

    def on_signal(number, _frame):
        if stop["signal"] is not None:
            # A second Ctrl-C: stop now, without the checkpoint (the last one is kept).
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
        stop["signal"] = number

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    saved = {"step": None}

    def save_checkpoint():
        if dist.main:
            def write(directory):
                peft_model.save_pretrained(directory)
                save_trainer_state(torch, os.path.join(directory, "trainer_state.pt"), optimizer,
                                   scheduler, step, ema, device if cuda else None)
            save_atomically(checkpoint, write)
            snapshot = None
            if args.snapshots:
                # A copy under its own name, for the supervisor's quantized check: the
                # checkpoint directory itself is replaced at the next save.
                snapshot = os.path.join(args.out, "snapshots", "step-{}".format(step))
                def copy(directory):
                    for name in ("adapter_config.json", "adapter_model.safetensors"):
                        shutil.copy(os.path.join(checkpoint, name), os.path.join(directory, name))
                os.makedirs(os.path.dirname(snapshot), exist_ok=True)
                save_atomically(snapshot, copy)
            emit("checkpoint", step=step, path=checkpoint, snapshot=snapshot)
        saved["step"] = step
        dist.barrier()

    def run_checks():
        if checks is not None:
            for prompt_id, output_ids in generate_checks(peft_model, checks, torch, device,
                                                         args.gradient_checkpointing):
                emit("sample", step=step, id=prompt_id, output_ids=output_ids)
        dist.barrier()

    if dist.main:
        emit("start", parameters=parameters, trainable=sum(p.numel() for p in trainable),
             rank=rank, alpha=alpha, lr=lr, steps=total, sequences=len(sequences), device=device,
             gpus=dist.world, batch_size=per_rank, grad_accum=args.grad_accum,
             precision="bf16" if bf16 else "fp32", attention=model.config._attn_implementation,
             gradient_checkpointing=args.gradient_checkpointing, resumed_at=step)
    def autocast():
        # The base weights are bf16 already; the LoRA factors stay f32 (what the optimizer
        # updates) but are multiplied in bf16, as mixed precision does: without autocast PEFT
        # runs every adapter matmul in f32 (measured 0.88× the transformers Trainer with
        # bf16=True at equal tokens per step).
        if bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return _Null()

    first_step = step
    timing = {"tokens": 0, "seconds": 0.0}
    done = step
    while done < total:
        epoch, skip = divmod(done, per_epoch)
        for index, batch in enumerate(global_batches(len(sequences), global_size, epoch, args.seed,
                                                     dist.world)):
            if index < skip:
                continue  # resume: the same data order, batches already trained skipped
            started = time.perf_counter()
            # This rank's share of the batch, in micro-batches of --batch-size.
            items = batch[dist.rank :: dist.world]
            mine = [items[i : i + per_rank] for i in range(0, len(items), per_rank)]
            # The loss is a sum over trained tokens divided by the whole global batch's count
            # (over the world size, since DDP averages the ranks' gradients): micro-batches and
            # ranks weigh by tokens exactly as one big batch would, and a micro-batch with no
            # trained token adds 0, not NaN. Labels are shifted by one inside the model.
            trained = sum(sum(1 for l in sequences[j]["labels"][1:] if l != -100) for j in batch)
            per_rank_items = max(1, trained) / dist.world
            tokens = 0
            loss_sum = 0.0
            for position, indices in enumerate(mine):
                ids, labels, mask = collate([sequences[j] for j in indices], torch, device)
                tokens += int(mask.sum())
                last = position == len(mine) - 1
                context = trainer_model.no_sync() if dist.world > 1 and not last else _Null()
                with context:  # no_sync covers backward, where DDP would all-reduce
                    with autocast():
                        loss = trainer_model(input_ids=ids, attention_mask=mask, labels=labels,
                                             num_items_in_batch=per_rank_items).loss
                    loss.backward()
                loss_sum += float(loss.detach())
            value = dist.mean(loss_sum, device)
            # A spike is relative *and* absolute: at a loss of 1e-4 a jump to 4e-4 is noise.
            spike = ema is not None and step > warmup and value > max(args.spike * ema, ema + 1.0)
            if not math.isfinite(value) or spike:
                if dist.main:
                    emit("diverged", step=step + 1, loss=value, ema=ema)
                dist.close()
                return 3
            grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable, args.clip))
            used_lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            step += 1
            done = step
            ema = value if ema is None else 0.9 * ema + 0.1 * value
            if step - first_step > TIMING_WARMUP_STEPS:
                timing["tokens"] += tokens
                timing["seconds"] += seconds
            emit("step", step=step, rank=dist.rank, world=dist.world, loss=value,
                 local_loss=loss_sum, lr=used_lr, grad_norm=grad_norm,
                 tokens=tokens, seconds=seconds, tokens_per_s=tokens / max(1e-9, seconds),
                 memory_bytes=int(torch.cuda.max_memory_allocated()) if cuda else 0)
            # Stop first: under torchrun a stopped rank has 30 s before it is killed, so no
            # answers are generated once a signal came.
            if dist.any(stop["signal"] is not None, device):
                if saved["step"] != step:
                    save_checkpoint()
                if dist.main:
                    emit("interrupted", step=step, signal=stop["signal"])
                dist.close()
                return 130
            if args.checks and args.check_every and step % args.check_every == 0 and step < total:
                run_checks()
            if step % args.checkpoint_every == 0:
                save_checkpoint()
            if step >= total:
                break
    if saved["step"] != step:
        save_checkpoint()
    if args.checks:
        run_checks()
    if dist.main:
        save_atomically(os.path.join(args.out, "adapter"), peft_model.save_pretrained)
    steady = timing["tokens"] / timing["seconds"] if timing["seconds"] > 0 else None
    emit("done", step=step, rank=dist.rank, world=dist.world,
         adapter=os.path.join(args.out, "adapter"), loss=ema,
         steady_tokens=timing["tokens"], steady_seconds=timing["seconds"],
         steady_tokens_per_s=steady,
         peak_memory_bytes=int(torch.cuda.max_memory_allocated()) if cuda else 0)
    dist.barrier()
    dist.close()
    return 0


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001 - reported as an event, then re-raised
        import traceback

        # Under torchrun the supervisor sees torchrun's summary on stderr, not this traceback.
        emit("error", message=traceback.format_exc()[-3000:], rank=int(os.environ.get("RANK", "0")))
        raise
