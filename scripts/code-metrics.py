#!/usr/bin/env python3
"""Size figures for a Rust source tree, without its tests.

Prints the lines of the largest files, the functions longer than a limit, and the
`duplicates` pairs found in the tree's non-test code. Test code is left out: files named
`tests.rs`, and every `#[cfg(test)]` item (blanked in a temporary copy, so line numbers
stay those of the real files).

    scripts/code-metrics.py model-tools/src            # 10 largest files, fns > 80 lines
    scripts/code-metrics.py model-tools/src --list     # and name each long function
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

FN_RE = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)")


def strip_strings(line):
    """The line without string and char literals or a trailing comment, for brace counting."""
    line = re.sub(r'r#*"[^"]*"#*', '""', line)
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//", 1)[0]


def block_end(lines, start):
    """Index of the line closing the block whose opening brace is on or after `start`."""
    depth = 0
    opened = False
    for i in range(start, len(lines)):
        for ch in strip_strings(lines[i]):
            if ch == "{":
                depth += 1
                opened = True
            elif ch == "}":
                depth -= 1
                if opened and depth == 0:
                    return i
            elif ch == ";" and not opened:
                return None  # a declaration without a body
    return None


def without_tests(lines):
    """The lines with every `#[cfg(test)]` item blanked."""
    out = list(lines)
    i = 0
    while i < len(out):
        if out[i].strip().startswith("#[cfg(test)]"):
            end = block_end(out, i + 1)
            if end is None:
                end = i + 1
            for j in range(i, end + 1):
                out[j] = "\n"
            i = end + 1
        else:
            i += 1
    return out


def long_functions(path, lines, limit):
    found = []
    for i, line in enumerate(lines):
        m = FN_RE.match(line)
        if not m:
            continue
        end = block_end(lines, i)
        if end is None:
            continue
        length = end - i + 1
        if length > limit:
            found.append((length, f"{path}:{i + 1} {m.group(7)}"))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--limit", type=int, default=80, help="a long function has more lines")
    parser.add_argument("--top", type=int, default=10, help="how many of the largest files")
    parser.add_argument("--list", action="store_true", help="name each long function")
    args = parser.parse_args()

    sources = []
    for dirpath, _, files in os.walk(args.root):
        for name in files:
            if name.endswith(".rs"):
                sources.append(os.path.join(dirpath, name))
    sources.sort()

    sizes = []
    long_fns = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in sources:
            with open(path, encoding="utf-8") as f:
                lines = f.readlines()
            sizes.append((len(lines), path))
            if os.path.basename(path) == "tests.rs":
                continue
            code = without_tests(lines)
            long_fns += long_functions(path, code, args.limit)
            copy = os.path.join(tmp, os.path.relpath(path, args.root))
            os.makedirs(os.path.dirname(copy), exist_ok=True)
            with open(copy, "w", encoding="utf-8") as f:
                f.writelines(code)

        sizes.sort(reverse=True)
        print(f"{len(sources)} files, {sum(n for n, _ in sizes)} lines")
        print(f"largest {args.top} files:")
        for n, path in sizes[: args.top]:
            print(f"  {n:6} {path}")
        print(f"functions over {args.limit} lines (tests left out): {len(long_fns)}")
        if args.list:
            for n, where in sorted(long_fns, reverse=True):
                print(f"  {n:6} {where}")
        if shutil.which("duplicates"):
            result = subprocess.run(
                ["duplicates", "--repo", tmp, "--most", "200", "--seconds", "120"],
                capture_output=True,
                text=True,
            )
            rows = result.stdout.replace(tmp + "/", "").splitlines()
            print("duplicates (tests left out): " + (rows[0] if rows else "no output"))
            if args.list:
                for row in rows[1:]:
                    print("  " + row)
        else:
            print("duplicates: not installed", file=sys.stderr)


if __name__ == "__main__":
    main()
