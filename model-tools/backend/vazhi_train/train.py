"""LoRA training on sequences prepared by `model-tools prepare-data`, supervised by
`model-tools train`.

Plain PyTorch + transformers + PEFT (no TRL). Every event is one JSON object per line on stdout
(`start`, `step`, `checkpoint`, `diverged`, `done`); human messages go to stderr. Checkpoints
every `--checkpoint-every` steps and on SIGINT/SIGTERM, written to a temporary directory and
renamed; `--resume` continues from the last one with the same data order.
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


def emit(event, **fields):
    fields["event"] = event
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


def batches(sequences, batch_size, epoch, seed):
    order = list(range(len(sequences)))
    random.Random(seed + epoch).shuffle(order)
    for start in range(0, len(order), batch_size):
        yield [sequences[i] for i in order[start : start + batch_size]]


def collate(batch, torch, device):
    width = max(len(s["input_ids"]) for s in batch)
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--stage", choices=["dapt", "sft"], required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.0)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.0)
    parser.add_argument("--warmup", type=float, default=0.05)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--spike", type=float, default=3.0,
                        help="stop when the loss exceeds this many times its moving average (and by > 1.0)")
    args = parser.parse_args(argv)

    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(args.seed)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32  # never fp16
    import transformers

    major_minor = tuple(int(x) for x in transformers.__version__.split(".")[:2])
    dtype_arg = "dtype" if major_minor >= (4, 56) else "torch_dtype"
    model = AutoModelForCausalLM.from_pretrained(args.model, **{dtype_arg: dtype})
    parameters = sum(p.numel() for p in model.parameters())
    rank, alpha = lora_defaults(parameters)
    rank = args.rank or rank
    alpha = args.alpha or alpha
    lr = args.lr or (2e-4 if args.stage == "dapt" else 2e-5)
    checkpoint = os.path.join(args.out, "checkpoint")
    if args.resume and os.path.isdir(checkpoint):
        model = PeftModel.from_pretrained(model, checkpoint, is_trainable=True)
    else:
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.05, target_modules=targets,
                            bias="none", task_type="CAUSAL_LM")
        model = get_peft_model(model, config)
    model.to(device)
    model.train()

    sequences = read_sequences(args.data)
    if not sequences:
        emit("error", message="no sequences in " + args.data)
        return 2
    per_epoch = math.ceil(len(sequences) / args.batch_size)
    total = args.max_steps or per_epoch * args.epochs
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0, fused=cuda)
    warmup = max(1, int(total * args.warmup))

    def schedule(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    step = 0
    state_file = os.path.join(checkpoint, "trainer_state.pt")
    if args.resume and os.path.exists(state_file):
        state = torch.load(state_file, weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]

    stop = {"signal": None}

    def on_signal(number, _frame):
        stop["signal"] = number

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def save_checkpoint():
        def write(directory):
            model.save_pretrained(directory)
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "step": step}, os.path.join(directory, "trainer_state.pt"))
        save_atomically(checkpoint, write)
        emit("checkpoint", step=step, path=checkpoint)

    emit("start", parameters=parameters, trainable=sum(p.numel() for p in trainable), rank=rank,
         alpha=alpha, lr=lr, steps=total, sequences=len(sequences), device=device,
         precision="bf16" if bf16 else "fp32", resumed_at=step)
    ema = None
    done = step
    while done < total:
        epoch, skip = divmod(done, per_epoch)
        for index, batch in enumerate(batches(sequences, args.batch_size, epoch, args.seed)):
            if index < skip:
                continue  # resume: the same data order, batches already trained skipped
            started = time.time()
            ids, labels, mask = collate(batch, torch, device)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            value = float(loss.detach())
            # A spike is relative *and* absolute: at a loss of 1e-4 a jump to 4e-4 is noise.
            spike = ema is not None and step > warmup and value > max(args.spike * ema, ema + 1.0)
            if not math.isfinite(value) or spike:
                emit("diverged", step=step, loss=value, ema=ema)
                return 3
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable, args.clip))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            done = step
            ema = value if ema is None else 0.9 * ema + 0.1 * value
            tokens = int(mask.sum())
            emit("step", step=step, loss=value, lr=scheduler.get_last_lr()[0], grad_norm=grad_norm,
                 tokens=tokens, tokens_per_s=tokens / max(1e-9, time.time() - started),
                 memory_bytes=int(torch.cuda.max_memory_allocated()) if cuda else 0)
            if step % args.checkpoint_every == 0:
                save_checkpoint()
            if stop["signal"] is not None:
                save_checkpoint()
                emit("interrupted", step=step, signal=stop["signal"])
                return 130
            if step >= total:
                break
    if step % args.checkpoint_every != 0:
        save_checkpoint()
    save_atomically(os.path.join(args.out, "adapter"), model.save_pretrained)
    emit("done", step=step, adapter=os.path.join(args.out, "adapter"), loss=ema)
    return 0


if __name__ == "__main__":
    sys.exit(main())
