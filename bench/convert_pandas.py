#!/usr/bin/python3
"""convert_pandas.py - pandas doing the bench's selection and GROUP BY on a
generated FOCUS or CUR 2.0 bill (read_csv(usecols=...) + groupby), for speed
only: its float sums are not the cross-check (DuckDB's DECIMAL sums are).
Prints the seconds taken and the number of groups."""
import sys
import time

import pandas as pd

kind, path = sys.argv[1], sys.argv[2]
t0 = time.monotonic()
if kind == "focus":
    df = pd.read_csv(path, usecols=["ChargePeriodStart", "ProviderName", "ChargeCategory", "ChargeClass",
                                    "CommitmentDiscountStatus", "EffectiveCost", "x_UsageType",
                                    "ChargeDescription", "SkuPriceDetails"],
                     na_values=["NULL", "null"], keep_default_na=False, dtype=str)
    df = df[(df.ChargeCategory == "Usage") & df.ChargeClass.isna() & (df.CommitmentDiscountStatus != "Unused")]
    key = df.x_UsageType.str.extract(r":([a-z0-9-]+)\.", expand=False)
    key = key.fillna(df.ChargeDescription.str.extract(r" - (.*) - ", expand=False))
    key = key.fillna(df.ChargeDescription)
    df = df.assign(d=df.ChargePeriodStart.str[:10], k=key, c=pd.to_numeric(df.EffectiveCost))
    g = df.groupby(["d", "ProviderName", "k"])["c"].sum()
else:
    df = pd.read_csv(path, usecols=["line_item_usage_start_date", "line_item_product_code",
                                    "line_item_line_item_type", "line_item_usage_type",
                                    "line_item_unblended_cost", "reservation_effective_cost",
                                    "savings_plan_savings_plan_effective_cost"], dtype=str)
    df = df[(df.line_item_product_code == "AmazonEC2") &
            df.line_item_line_item_type.isin(["Usage", "DiscountedUsage", "SavingsPlanCoveredUsage", "Refund"])]
    cost = pd.to_numeric(df.line_item_unblended_cost)
    cost = cost.where(df.line_item_line_item_type != "DiscountedUsage", pd.to_numeric(df.reservation_effective_cost))
    cost = cost.where(df.line_item_line_item_type != "SavingsPlanCoveredUsage",
                      pd.to_numeric(df.savings_plan_savings_plan_effective_cost))
    df = df.assign(d=df.line_item_usage_start_date.str[:10], c=cost,
                   k=df.line_item_usage_type.str.extract(r":([a-z0-9-]+)\.", expand=False))
    g = df.groupby(["d", "k"])["c"].sum()
print("%.3f %d" % (time.monotonic() - t0, len(g)))
