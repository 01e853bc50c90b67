"""Training throughput of `model-tools train` against a plain transformers `Trainer` + PEFT
baseline, measured in the same run on the same GPU, model and documents.

    python model-tools/benches/train_gpu.py bench --model-tools BIN --tokenizer DIR \
        --shape qwen2.5-0.5b --shape qwen3-0.6b --out DIR [--steps 40]
    python model-tools/benches/train_gpu.py make-model --shape tiny --tokenizer DIR --out DIR

Models are randomly initialised with the real models' shapes (Qwen2.5-0.5B, Qwen3-0.6B: the
checkpoints are not reachable offline; throughput and memory depend on the shape, not the
values). Tokens come from a real tokenizer (`--tokenizer`, e.g. SmolLM2's) whose ids fit the
vocabulary. Documents have log-normal lengths (median ~300 tokens, cut at the sequence length)
like a real DAPT corpus. Ours packs them into full sequences (`prepare-data`); the baseline
pads each batch to its longest document, as `DataCollatorForLanguageModeling` does by default.
Throughput counts real (non-padding) tokens per second over the steps after the first three.

MFU counts the work a LoRA step must do per token: forward 2·N, backward through the
activations 2·N (frozen weights get no weight gradient), attention 4·L·d·s̄ forward and twice
that backward (s̄ = mean causal context), and 6·N_lora — over the GPU's dense bf16 peak. (The
full-fine-tuning convention 6·N would read 1.5× higher.)
"""
import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time

SHAPES = {
    # Qwen/Qwen2.5-0.5B config.json
    "qwen2.5-0.5b": dict(architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=896,
                         intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                         rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                         hidden_act="silu", sliding_window=None, use_sliding_window=False),
    # Qwen/Qwen3-0.6B config.json
    "qwen3-0.6b": dict(architectures=["Qwen3ForCausalLM"], model_type="qwen3", hidden_size=1024,
                       intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                       num_key_value_heads=8, head_dim=128, vocab_size=151936,
                       max_position_embeddings=40960, rope_theta=1000000.0, rms_norm_eps=1e-6,
                       tie_word_embeddings=True, hidden_act="silu", attention_bias=False),
    # A few-MB model for trying the plumbing on a CPU.
    "tiny": dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=64,
                 intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=49152, max_position_embeddings=2048,
                 rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                 hidden_act="silu"),
}

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "generation_config.json", "chat_template.jinja"]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DENSE_BF16_PEAK = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L40S": 362e12,
                   "4090": 165.2e12}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def make_model(shape, tokenizer_dir, out, seed=0):
    """A randomly initialised model of `shape`, saved in bf16 with `tokenizer_dir`'s files."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = dict(SHAPES[shape])
    with open(os.path.join(tokenizer_dir, "config.json")) as f:
        donor = json.load(f)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if key in donor:
            spec[key] = donor[key]
    model_type = spec.pop("model_type")
    config = AutoConfig.for_model(model_type, **spec)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        if os.path.exists(os.path.join(tokenizer_dir, name)):
            shutil.copy(os.path.join(tokenizer_dir, name), os.path.join(out, name))
    parameters = sum(p.numel() for p in model.parameters())
    log("made {} ({:.0f} M parameters) in {}".format(shape, parameters / 1e6, out))
    return out


def make_documents(tokenizer_dir, count, seq_len, path, seed=1):
    """`count` texts of random words from the tokenizer's vocabulary, log-normal lengths."""
    with open(os.path.join(tokenizer_dir, "tokenizer.json"), encoding="utf-8") as f:
        vocab = json.load(f)["model"]["vocab"]
    words = sorted({w.lstrip("Ġ▁").lower() for w in vocab
                    if w.lstrip("Ġ▁").isalpha() and w.lstrip("Ġ▁").isascii()
                    and 3 <= len(w.lstrip("Ġ▁")) <= 10})
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(count):
            # ~1.3 tokens per random word; median 300 tokens, long tail cut at seq_len.
            tokens = min(seq_len, int(rng.lognormvariate(math.log(300), 0.7)))
            text = " ".join(rng.choice(words) for _ in range(max(8, int(tokens / 1.3))))
            f.write(json.dumps({"text": text}) + "\n")
    return path


def model_flops_per_token(model_dir, mean_context, lora_rank):
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    d, layers, vocab = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    heads, kv = c["num_attention_heads"], c["num_key_value_heads"]
    head_dim = c.get("head_dim") or d // heads
    q, k = heads * head_dim, kv * head_dim
    ff = c["intermediate_size"]
    per_layer = d * q + 2 * d * k + q * d + 3 * d * ff
    n_matmul = layers * per_layer + d * vocab  # the LM head is a matmul even when tied
    n_lora = layers * lora_rank * ((d + q) + 2 * (d + k) + (q + d) + 3 * (d + ff))
    attention_forward = 4 * layers * q * mean_context
    return 4 * n_matmul + 3 * attention_forward + 6 * n_lora


def peak_flops():
    import torch

    if not torch.cuda.is_available():
        return None, "cpu"
    name = torch.cuda.get_device_name(0)
    for key, value in DENSE_BF16_PEAK.items():
        if key in name:
            return value, name
    return None, name


def run_ours(binary, model_dir, docs, out, steps, batch_size, seq_len, gpus, extra):
    shutil.rmtree(out, ignore_errors=True)
    command = [binary, "train", "--model", model_dir, "--stage", "dapt", "--data", docs,
               "--out", out, "--seq-len", str(seq_len), "--batch-size", str(batch_size),
               "--max-steps", str(steps), "--checkpoint-every", str(10 * steps),
               "--gpus", str(gpus), "--json"] + extra
    log("$", " ".join(command))
    started = time.time()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0:
        log(result.stdout[-3000:], result.stderr[-3000:])
        raise SystemExit("model-tools train failed ({})".format(result.returncode))
    done = [e for e in events if e["event"] == "done"][-1]
    start = [e for e in events if e["event"] == "start"][-1]
    return {
        "tokens_per_s": done["steady_tokens_per_s"],
        "peak_memory_bytes": done["peak_memory_bytes"],
        "steps": done["step"],
        "wall_s": time.time() - started,
        "rank": start["rank"],
        "precision": start["precision"],
        "final_loss": done.get("loss"),
        "rank_tokens_per_s": done.get("rank_tokens_per_s"),
    }


def run_baseline(model_dir, docs, steps, batch_size, seq_len, bf16_flag):
    """transformers Trainer + PEFT, default settings, padded batches."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForCausalLM, AutoTokenizer,
                              DataCollatorForLanguageModeling, Trainer, TrainerCallback,
                              TrainingArguments)

    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with open(docs, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    texts = texts[: steps * batch_size]
    dataset = [{"input_ids": ids} for ids in
               tokenizer(texts, truncation=True, max_length=seq_len)["input_ids"]]
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    loaded_dtype = str(next(model.parameters()).dtype)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                             target_modules=TARGETS, task_type="CAUSAL_LM"))
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    real_tokens = []
    padded_tokens = []

    def counting_collator(features):
        batch = collator(features)
        real_tokens.append(int(batch["attention_mask"].sum()))
        padded_tokens.append(int(batch["input_ids"].numel()))
        return batch

    timing = {"start": None, "tokens": 0, "seconds": 0.0, "step": 0, "padded": 0}

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            sync()
            timing["start"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            sync()
            timing["step"] += 1
            if timing["step"] > 3:
                timing["seconds"] += time.perf_counter() - timing["start"]
                timing["tokens"] += real_tokens[timing["step"] - 1]

    args = TrainingArguments(output_dir="/tmp/vazhi-bench-trainer", per_device_train_batch_size=batch_size,
                             max_steps=steps, learning_rate=2e-4, save_strategy="no",
                             report_to=[], logging_steps=10 * steps, bf16=bf16_flag,
                             disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=dataset,
                      data_collator=counting_collator, callbacks=[Timer()])
    started = time.time()
    trainer.train()
    return {
        "tokens_per_s": timing["tokens"] / timing["seconds"],
        "peak_memory_bytes": int(torch.cuda.max_memory_allocated()) if cuda else 0,
        "steps": timing["step"],
        "wall_s": time.time() - started,
        "loaded_dtype": loaded_dtype,
        "optim": str(args.optim),
        "bf16_flag": bf16_flag,
        "attention": model.config._attn_implementation,
        "padding_share": 1 - sum(real_tokens) / max(1, sum(padded_tokens)),
        "real_tokens_per_step": sum(real_tokens) / max(1, len(real_tokens)),
        # Attention work per token in unpacked documents: a token sees its own document only.
        "mean_context": sum(len(d["input_ids"]) * (len(d["input_ids"]) + 1) / 2 for d in dataset)
        / max(1, sum(len(d["input_ids"]) for d in dataset)),
        "transformers": transformers.__version__,
    }


def bench(args):
    peak, device = peak_flops()
    results = []
    for shape in args.shape:
        model_dir = make_model(shape, args.tokenizer, os.path.join(args.out, shape))
        docs = make_documents(args.tokenizer, 3000, args.seq_len,
                              os.path.join(args.out, shape + "-docs.jsonl"))
        flops = model_flops_per_token(model_dir, (args.seq_len + 1) / 2, 8)
        row = {"shape": shape, "device": device, "flops_per_token": flops}
        row["ours"] = run_ours(args.model_tools, model_dir, docs,
                               os.path.join(args.out, shape + "-ours"), args.steps,
                               args.batch_size, args.seq_len, 1, [])
        row["ours_gc"] = run_ours(args.model_tools, model_dir, docs,
                                  os.path.join(args.out, shape + "-ours-gc"), args.steps,
                                  args.batch_size, args.seq_len, 1, ["--gradient-checkpointing"])
        row["trainer_default"] = run_baseline(model_dir, docs, args.steps, args.batch_size,
                                              args.seq_len, False)
        if peak is not None or device != "cpu":  # bf16=True needs a GPU
            row["trainer_bf16"] = run_baseline(model_dir, docs, args.steps, args.batch_size,
                                               args.seq_len, True)
        # Ours again with about the baseline's real tokens per step (it trains ~8 documents,
        # not 8 × 1024 tokens, per step): the same work per optimizer step.
        matched = max(1, round(row["trainer_default"]["real_tokens_per_step"] / args.seq_len))
        row["ours_matched"] = run_ours(args.model_tools, model_dir, docs,
                                       os.path.join(args.out, shape + "-ours-matched"), args.steps,
                                       matched, args.seq_len, 1, [])
        row["ours_matched"]["batch_size"] = matched
        for key in ("ours", "ours_gc", "ours_matched", "trainer_default", "trainer_bf16"):
            r = row.get(key)
            if r is None:
                continue
            per_token = flops
            if key.startswith("trainer"):
                per_token = model_flops_per_token(model_dir, r["mean_context"], 8)
            r["mfu"] = r["tokens_per_s"] * per_token / peak if peak else None
        results.append(row)
        shutil.rmtree(model_dir, ignore_errors=True)
    print_table(results, args)
    with open(os.path.join(args.out, "bench-train.json"), "w") as f:
        json.dump(results, f, indent=1)


def print_table(results, args):
    gib = 1024 ** 3
    print("training throughput, seq {} × batch {}, {} steps (steady state after 3), LoRA r=8 on "
          "all linear projections".format(args.seq_len, args.batch_size, args.steps))
    for row in results:
        print("{} on {} ({:.2f} GFLOP per token)".format(row["shape"], row["device"],
                                                        row["flops_per_token"] / 1e9))
        ours = row["ours"]["tokens_per_s"]
        for key, label in (("ours", "model-tools train (packed)"),
                           ("ours_gc", "  … with --gradient-checkpointing"),
                           ("ours_matched", "  … batch {} (baseline's tokens/step)".format(
                               row["ours_matched"]["batch_size"])),
                           ("trainer_default", "Trainer+PEFT defaults (padded)"),
                           ("trainer_bf16", "Trainer+PEFT bf16=True (padded)")):
            r = row.get(key)
            if r is None:
                continue
            mfu = "  MFU {:5.1f} %".format(100 * r["mfu"]) if r["mfu"] else ""
            ratio = "" if key.startswith("ours") else "   ours = {:.2f}× ({:.2f}× at its tokens/step)".format(
                ours / r["tokens_per_s"], row["ours_matched"]["tokens_per_s"] / r["tokens_per_s"])
            print("  {:34} {:9.0f} tokens/s  peak {:6.2f} GiB{}{}".format(
                label, r["tokens_per_s"], r["peak_memory_bytes"] / gib, mfu, ratio))
        base = row["trainer_default"]
        print("  baseline: {:.0f} real tokens per step; its data loading falls outside its timed "
              "window (ours includes collation); its MFU uses its documents' own attention "
              "context ({:.0f} tokens on average)".format(base["real_tokens_per_step"],
                                                          base["mean_context"]))
        print("  baseline ran {} weights, optim {}, attention {}, transformers {}; {:.0f} % of "
              "its batch positions were padding".format(
                  base["loaded_dtype"], base["optim"], base["attention"], base["transformers"],
                  100 * base["padding_share"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--model-tools", required=True)
    b.add_argument("--tokenizer", required=True)
    b.add_argument("--shape", action="append", choices=sorted(SHAPES), required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--steps", type=int, default=40)
    b.add_argument("--batch-size", type=int, default=8)
    b.add_argument("--seq-len", type=int, default=1024)
    m = sub.add_parser("make-model")
    m.add_argument("--shape", choices=sorted(SHAPES), required=True)
    m.add_argument("--tokenizer", required=True)
    m.add_argument("--out", required=True)
    d = sub.add_parser("make-docs")
    d.add_argument("--tokenizer", required=True)
    d.add_argument("--count", type=int, default=3000)
    d.add_argument("--seq-len", type=int, default=1024)
    d.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.command == "bench":
        os.makedirs(args.out, exist_ok=True)
        bench(args)
    elif args.command == "make-model":
        make_model(args.shape, args.tokenizer, args.out)
    else:
        make_documents(args.tokenizer, args.count, args.seq_len, args.out)


if __name__ == "__main__":
    main()
