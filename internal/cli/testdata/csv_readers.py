# Reads a CSV file with Python's csv module and with pandas, as a BI user
# would, and prints what each saw as JSON: {"csv": [[...]], "pandas": [[...]]}.
# Usage: python3 csv_readers.py FILE
import csv
import json
import sys

import pandas as pd

path = sys.argv[1]
with open(path, newline="", encoding="utf-8-sig") as f:
    rows = list(csv.reader(f))
# Every cell as text, exactly as written: no NaN, no type guessing.
df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig")
out = {"csv": rows, "pandas": [list(df.columns)] + df.values.tolist(), "pandas_version": pd.__version__}
json.dump(out, sys.stdout)
