#!/usr/bin/python3
"""gen_bills.py - writes sample cloud bills: FOCUS (1.2 columns) and AWS CUR 2.0.

The columns and quirks are those of the real exports (see the billing reference,
SERVICE.md section 8): FOCUS with unquoted NULL tokens, hourly AWS rows, daily
Microsoft rows, Google GPU SKUs billed in seconds, E-notation numbers, commitment
purchases and unused commitment rows, credits, tax, negative usage and a
correction; CUR 2.0 with Usage / DiscountedUsage / SavingsPlanCoveredUsage and
the SavingsPlanNegation, RIFee, Tax and Credit lines that must not count. About
a fifth of the lines are GPU lines. Deterministic for a given --seed; any size.

    /usr/bin/python3 scripts/gen_bills.py focus --lines 1000 --month 2026-01 -o focus.csv
    /usr/bin/python3 scripts/gen_bills.py cur2 --lines 1000000 --crlf -o cur.csv

Standard library only.
"""
import argparse
import calendar
import json
import random
import sys
import zlib

FOCUS_COLUMNS = [
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType",
    "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
    "CommitmentDiscountStatus", "CommitmentDiscountType", "ConsumedQuantity", "ConsumedUnit",
    "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceId", "InvoiceIssuerName",
    "ListCost", "ListUnitPrice", "PricingCategory", "PricingCurrency", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId",
    "ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "ServiceSubcategory",
    "SkuId", "SkuPriceDetails", "SkuPriceId", "SubAccountId", "SubAccountName", "SubAccountType",
    "Tags", "x_UsageType",
]

CUR2_COLUMNS = [
    "identity_line_item_id", "identity_time_interval", "bill_invoice_id", "bill_invoicing_entity",
    "bill_billing_entity", "bill_bill_type", "bill_payer_account_id", "bill_payer_account_name",
    "bill_billing_period_start_date", "bill_billing_period_end_date", "line_item_usage_account_id",
    "line_item_usage_account_name", "line_item_line_item_type", "line_item_usage_start_date",
    "line_item_usage_end_date", "line_item_product_code", "line_item_usage_type",
    "line_item_operation", "line_item_availability_zone", "line_item_resource_id",
    "line_item_usage_amount", "line_item_normalization_factor", "line_item_normalized_usage_amount",
    "line_item_currency_code", "line_item_unblended_rate", "line_item_unblended_cost",
    "line_item_blended_rate", "line_item_blended_cost", "line_item_net_unblended_cost",
    "line_item_line_item_description", "line_item_tax_type", "line_item_legal_entity",
    "product_product_family", "product_instance_type", "product_region_code", "product",
    "pricing_term", "pricing_unit", "pricing_public_on_demand_cost", "pricing_public_on_demand_rate",
    "reservation_reservation_a_r_n", "reservation_effective_cost",
    "savings_plan_savings_plan_a_r_n", "savings_plan_savings_plan_rate",
    "savings_plan_savings_plan_effective_cost", "resource_tags", "cost_category", "discount",
]

# (instance type, on-demand USD/hour)
AWS_GPU = [("g5.4xlarge", "1.624"), ("g5.xlarge", "1.006"), ("p4d.24xlarge", "32.7726"),
           ("p5.48xlarge", "98.32"), ("g6.12xlarge", "4.6016"), ("g4dn.xlarge", "0.526"),
           ("p4de.24xlarge", "40.9657"), ("g6e.2xlarge", "2.24208")]
AWS_OTHER = [("m5.large", "0.096"), ("c6a.4xlarge", "0.612"), ("t3.micro", "0.0104"),
             ("r6i.2xlarge", "0.504"), ("inf2.xlarge", "0.7582")]
AZURE_GPU = [("NC24ads A100 v4", "NCads A100 v4", "3.673"), ("ND96isr H100 v5", "NDisr H100 v5", "98.32"),
             ("NV12ads A10 v5", "NVads A10 v5", "0.908"), ("NC4as T4 v3", "NCasT4 v3", "0.526")]
GCP_GPU = [("Nvidia Tesla T4 GPU running in Americas", "0.35"),
           ("Nvidia Tesla A100 80GB GPU running in Americas", "3.93"),
           ("Nvidia L4 GPU running in Americas", "0.56"),
           ("Commitment v1: Nvidia H100 80GB GPU running in Americas for 1 Year", "6.98")]
REGIONS = [("us-east-1", "US East (N. Virginia)", "USE1-"), ("us-west-2", "US West (Oregon)", "USW2-"),
           ("eu-west-1", "EU (Ireland)", "EU-")]


def money(rng, value, allow_e=True):
    """Decimal text as exports write it: 11 places, sometimes E-notation."""
    v = round(value, 11)
    if allow_e and rng.random() < 0.03:
        # E-notation, exactly representable from the same digits
        digits = "%d" % round(v * 10**7)
        return "%sE-7" % digits
    return "%.11f" % v


def csv_field(s):
    if s is None:
        return "NULL"  # unquoted null token, as the official FOCUS sample writes it
    if any(c in s for c in ',"\r\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


class Month:
    def __init__(self, ym):
        y, m = (int(x) for x in ym.split("-"))
        self.y, self.m = y, m
        self.days = calendar.monthrange(y, m)[1]
        ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
        self.start = "%04d-%02d-01 00:00:00" % (y, m)
        self.end = "%04d-%02d-01 00:00:00" % (ny, nm)

    def hour(self, rng):
        d, h = rng.randint(1, self.days), rng.randint(0, 23)
        s = "%04d-%02d-%02d %02d:00:00" % (self.y, self.m, d, h)
        if h == 23:
            e = "%04d-%02d-%02d 00:00:00" % ((self.y, self.m, d + 1) if d < self.days else
                                            ((self.y + 1, 1, 1) if self.m == 12 else (self.y, self.m + 1, 1)))
        else:
            e = "%04d-%02d-%02d %02d:00:00" % (self.y, self.m, d, h + 1)
        return s, e

    def day(self, rng):
        d = rng.randint(1, self.days)
        s = "%04d-%02d-%02d 00:00:00" % (self.y, self.m, d)
        e = ("%04d-%02d-%02d 00:00:00" % (self.y, self.m, d + 1) if d < self.days else self.end)
        return s, e


def focus_row(rng, mo, i):
    r = dict.fromkeys(FOCUS_COLUMNS)
    r.update(BillingAccountId="123456789012", BillingAccountName="Heliox Labs", BillingAccountType="Billing Account",
             BillingCurrency="USD", PricingCurrency="USD", BillingPeriodStart=mo.start, BillingPeriodEnd=mo.end,
             ChargeCategory="Usage", ChargeFrequency="Usage-Based", PricingCategory="Standard",
             SubAccountId="2109876543%02d" % (i % 7), SubAccountName="team-%d" % (i % 7),
             SubAccountType="Account", InvoiceId="INV-%04d%02d" % (mo.y, mo.m),
             Tags=json.dumps({"team": "ml-%d" % (i % 5), "env": rng.choice(["prod", "dev"])}))
    k = rng.random()
    if k < 0.14:  # AWS GPU instance hour
        itype, rate = rng.choice(AWS_GPU)
        reg = rng.choice(REGIONS)
        s, e = mo.hour(rng)
        qty = 1.0 if rng.random() < 0.8 else round(rng.uniform(0.01, 1.0), 6)
        cost = float(rate) * qty * rng.uniform(0.55, 1.0)
        used = rng.random() < 0.2
        r.update(ProviderName="AWS", PublisherName="Amazon Web Services, Inc.",
                 InvoiceIssuerName="Amazon Web Services, Inc.", ServiceCategory="Compute",
                 ServiceName="Amazon Elastic Compute Cloud", ServiceSubcategory="Virtual Machines",
                 ChargePeriodStart=s, ChargePeriodEnd=e, RegionId=reg[0], RegionName=reg[1],
                 AvailabilityZone=reg[0] + "a", ResourceId="i-%016x" % rng.getrandbits(64), ResourceType="instance",
                 ChargeDescription="$%s per On Demand Linux %s Instance Hour" % (rate, itype),
                 x_UsageType=reg[2] + ("SpotUsage:" if rng.random() < 0.1 else "BoxUsage:") + itype,
                 ConsumedQuantity="%.15f" % qty, ConsumedUnit="Hours", PricingQuantity="%.11f" % qty,
                 PricingUnit="Hours", ListUnitPrice=rate, ContractedUnitPrice=rate,
                 ListCost=money(rng, float(rate) * qty, False), ContractedCost=money(rng, float(rate) * qty, False),
                 BilledCost=money(rng, 0 if used else float(rate) * qty, False), EffectiveCost=money(rng, cost),
                 SkuId="SKU%06d" % (zlib.crc32(itype.encode()) % 999983), SkuPriceId="SKU%06d.OD" % (zlib.crc32(itype.encode()) % 999983))
        if rng.random() < 0.5:
            r["SkuPriceDetails"] = json.dumps({"InstanceType": itype, "x_OperatingSystem": "Linux"})
        if used:
            r.update(CommitmentDiscountCategory="Spend", CommitmentDiscountId="arn:aws:savingsplans::1:savingsplan/sp-1",
                     CommitmentDiscountStatus="Used", CommitmentDiscountType="Savings Plan", PricingCategory="Committed")
    elif k < 0.17:  # Azure GPU VM, daily rows
        meter, series, rate = rng.choice(AZURE_GPU)
        s, e = mo.day(rng)
        qty = float(rng.randint(1, 24))
        r.update(ProviderName="Microsoft", PublisherName="Microsoft", InvoiceIssuerName="Microsoft",
                 ServiceCategory="Compute", ServiceName="Virtual Machines", ChargePeriodStart=s, ChargePeriodEnd=e,
                 RegionId="eastus", RegionName="East US", ResourceType="Virtual machine",
                 ResourceId="/subscriptions/0000/resourceGroups/ml/providers/Microsoft.Compute/virtualMachines/vm%d" % (i % 13),
                 ChargeDescription="Virtual Machines %s Series - %s - US East" % (series, meter),
                 ConsumedQuantity="%.15f" % qty, ConsumedUnit="Hours", PricingQuantity="%.11f" % qty,
                 PricingUnit="1 Hour", ListUnitPrice=rate, BilledCost=money(rng, float(rate) * qty, False),
                 EffectiveCost=money(rng, float(rate) * qty), ListCost=money(rng, float(rate) * qty, False),
                 ContractedCost=money(rng, float(rate) * qty, False))
        if rng.random() < 0.5:
            r["SkuPriceDetails"] = json.dumps({"InstanceType": "Standard_" + meter.replace(" ", "_")})
    elif k < 0.20:  # Google GPU SKU, seconds
        desc, rate = rng.choice(GCP_GPU)
        s, e = mo.day(rng)
        secs = rng.randint(60, 86400)
        cost = float(rate) * secs / 3600
        r.update(ProviderName="Google Cloud", PublisherName="Google Cloud", InvoiceIssuerName="Google Cloud",
                 ServiceCategory="Compute", ServiceName="Compute Engine", ChargePeriodStart=s, ChargePeriodEnd=e,
                 RegionId="us-central1", RegionName="Iowa", ChargeDescription=desc,
                 ConsumedQuantity="%d" % secs, ConsumedUnit="seconds", PricingQuantity="%.11f" % (secs / 3600),
                 PricingUnit="hour", BilledCost=money(rng, cost, False), EffectiveCost=money(rng, cost),
                 ListCost=money(rng, cost, False), ContractedCost=money(rng, cost, False))
    else:  # everything else: instances, storage, transfer, commitments, credits, tax
        reg = rng.choice(REGIONS)
        s, e = mo.hour(rng)
        r.update(ProviderName="AWS", PublisherName="Amazon Web Services, Inc.",
                 InvoiceIssuerName="Amazon Web Services, Inc.", ChargePeriodStart=s, ChargePeriodEnd=e,
                 RegionId=reg[0], RegionName=reg[1])
        j = rng.random()
        if j < 0.45:
            itype, rate = rng.choice(AWS_OTHER)
            cost = float(rate)
            r.update(ServiceCategory="Compute", ServiceName="Amazon Elastic Compute Cloud",
                     ChargeDescription="$%s per On Demand Linux %s Instance Hour" % (rate, itype),
                     x_UsageType=reg[2] + "BoxUsage:" + itype, ConsumedQuantity="1.000000000000000",
                     ConsumedUnit="Hours", ResourceId="i-%016x" % rng.getrandbits(64), ResourceType="instance")
        elif j < 0.80:
            gb = rng.uniform(0, 50)
            cost = gb * 0.08 / 730
            r.update(ServiceCategory="Storage", ServiceName="Amazon Elastic Block Store",
                     ChargeDescription="$0.08 per GB-month of General Purpose (gp3) provisioned storage - " + reg[1],
                     x_UsageType=reg[2] + "EBS:VolumeUsage.gp3", ConsumedQuantity="%.15f" % (gb / 730),
                     ConsumedUnit="GB-Months", ResourceId="vol-%016x" % rng.getrandbits(64))
        elif j < 0.93:
            gb = rng.uniform(0, 5)
            cost = gb * 0.09
            r.update(ServiceCategory="Networking", ServiceName="AWS Data Transfer",
                     ChargeDescription="$0.09 per GB - first 10 TB / month data transfer out",
                     x_UsageType=reg[2] + "DataTransfer-Out-Bytes", ConsumedQuantity="%.15f" % gb, ConsumedUnit="GB")
        elif j < 0.95:  # a commitment purchase (never counted)
            cost = 0.0
            r.update(ChargeCategory="Purchase", ChargeFrequency="Recurring", ServiceCategory="Compute",
                     ServiceName="Savings Plans for AWS Compute usage", ChargeDescription="1 year No Upfront Compute Savings Plan",
                     CommitmentDiscountId="arn:aws:savingsplans::1:savingsplan/sp-1", CommitmentDiscountType="Savings Plan",
                     CommitmentDiscountCategory="Spend", BilledCost="12.00000000000")
        elif j < 0.97:  # an unused commitment hour on a GPU instance (F2)
            itype, rate = rng.choice(AWS_GPU)
            cost = float(rate) * 0.3
            r.update(ServiceCategory="Compute", ServiceName="Amazon Elastic Compute Cloud",
                     ChargeDescription="Unused reservation for %s" % itype, x_UsageType=reg[2] + "BoxUsage:" + itype,
                     CommitmentDiscountStatus="Unused", CommitmentDiscountId="arn:aws:ec2:ri/r-1",
                     CommitmentDiscountType="Reserved Instance", CommitmentDiscountCategory="Usage",
                     ResourceId="arn:aws:ec2:ri/r-1", PricingCategory="Committed")
        elif j < 0.985:  # credit (never counted)
            cost = -rng.uniform(0, 3)
            r.update(ChargeCategory="Credit", ServiceCategory="Compute",
                     ChargeDescription="AWS Promotional Credits", ChargeFrequency="One-Time")
        else:  # tax
            cost = rng.uniform(0, 2)
            r.update(ChargeCategory="Tax", ServiceCategory="Compute", ChargeDescription="Tax for usage")
        r["EffectiveCost"] = money(rng, cost)
        r["BilledCost"] = r["BilledCost"] or money(rng, cost, False)
        r["ListCost"] = money(rng, max(cost, 0), False)
        r["ContractedCost"] = r["ListCost"]
    return r


def cur2_row(rng, mo, i):
    r = dict.fromkeys(CUR2_COLUMNS, "")
    s, e = mo.hour(rng)
    s, e = s.replace(" ", "T") + "Z", e.replace(" ", "T") + "Z"
    reg = rng.choice(REGIONS)
    r.update(identity_line_item_id="%040x" % rng.getrandbits(160), identity_time_interval=s + "/" + e,
             bill_invoice_id="", bill_invoicing_entity="Amazon Web Services, Inc.", bill_billing_entity="AWS",
             bill_bill_type="Anniversary", bill_payer_account_id="123456789012", bill_payer_account_name="Heliox Labs",
             bill_billing_period_start_date=mo.start.replace(" ", "T") + "Z",
             bill_billing_period_end_date=mo.end.replace(" ", "T") + "Z",
             line_item_usage_account_id="2109876543%02d" % (i % 7), line_item_usage_account_name="team-%d" % (i % 7),
             line_item_usage_start_date=s, line_item_usage_end_date=e, line_item_currency_code="USD",
             line_item_legal_entity="Amazon Web Services, Inc.", product_region_code=reg[0],
             line_item_availability_zone=reg[0] + "a", pricing_term="OnDemand",
             resource_tags=json.dumps({"user_team": "ml-%d" % (i % 5)}), cost_category="{}", discount="{}")
    k = rng.random()
    if k < 0.20:  # a GPU instance line, in one of the counted line types
        itype, rate = rng.choice(AWS_GPU)
        qty = 1.0 if rng.random() < 0.8 else round(rng.uniform(0.01, 1.0), 6)
        od = float(rate) * qty
        ut = reg[2] + ("SpotUsage:" if rng.random() < 0.1 else "BoxUsage:") + itype
        lt = rng.choices(["Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"], [6, 2, 2])[0]
        r.update(line_item_line_item_type=lt, line_item_product_code="AmazonEC2", line_item_usage_type=ut,
                 line_item_operation="RunInstances", line_item_resource_id="i-%016x" % rng.getrandbits(64),
                 line_item_usage_amount="%.6f" % qty, line_item_unblended_rate=rate,
                 line_item_line_item_description="$%s per On Demand Linux %s Instance Hour" % (rate, itype),
                 product_product_family="Compute Instance", product_instance_type=itype, pricing_unit="Hrs",
                 product=json.dumps({"instance_type": itype, "region": reg[0]}),
                 pricing_public_on_demand_cost=money(rng, od, False), pricing_public_on_demand_rate=rate)
        if lt == "Usage":
            r["line_item_unblended_cost"] = money(rng, od)
        elif lt == "DiscountedUsage":
            r.update(line_item_unblended_cost="0", reservation_effective_cost=money(rng, od * 0.6),
                     reservation_reservation_a_r_n="arn:aws:ec2:us-east-1:1:reserved-instances/r-1",
                     line_item_line_item_description="%s reserved instance applied" % itype)
        else:
            r.update(line_item_unblended_cost=money(rng, od, False),
                     savings_plan_savings_plan_effective_cost=money(rng, od * 0.7),
                     savings_plan_savings_plan_a_r_n="arn:aws:savingsplans::1:savingsplan/sp-1",
                     savings_plan_savings_plan_rate="%.4f" % (float(rate) * 0.7))
    else:
        j = rng.random()
        if j < 0.4:
            itype, rate = rng.choice(AWS_OTHER)
            r.update(line_item_line_item_type="Usage", line_item_product_code="AmazonEC2",
                     line_item_usage_type=reg[2] + "BoxUsage:" + itype, line_item_operation="RunInstances",
                     line_item_usage_amount="1", line_item_unblended_cost=money(rng, float(rate)),
                     line_item_line_item_description="$%s per On Demand Linux %s Instance Hour" % (rate, itype),
                     product_instance_type=itype, pricing_unit="Hrs")
        elif j < 0.7:
            gb = rng.uniform(0, 50)
            r.update(line_item_line_item_type="Usage", line_item_product_code="AmazonS3",
                     line_item_usage_type=reg[2] + "TimedStorage-ByteHrs", line_item_usage_amount="%.9f" % gb,
                     line_item_unblended_cost=money(rng, gb * 0.023 / 730), pricing_unit="GB-Mo",
                     line_item_line_item_description="$0.023 per GB - first 50 TB / month of storage used")
        elif j < 0.8:  # the negation of a covered GPU line (A5: never counted)
            itype, rate = rng.choice(AWS_GPU)
            r.update(line_item_line_item_type="SavingsPlanNegation", line_item_product_code="AmazonEC2",
                     line_item_usage_type=reg[2] + "BoxUsage:" + itype, line_item_usage_amount="1",
                     line_item_unblended_cost=money(rng, -float(rate), False), pricing_unit="Hrs",
                     line_item_line_item_description="SavingsPlanNegation used by AccountId : 1 and UsageSku : X")
        elif j < 0.85:
            itype, rate = rng.choice(AWS_GPU)
            r.update(line_item_line_item_type="RIFee", line_item_product_code="AmazonEC2",
                     line_item_usage_type=reg[2] + "HeavyUsage:" + itype, line_item_usage_amount="720",
                     line_item_unblended_cost=money(rng, float(rate) * 0.6 * 720, False), pricing_unit="Hrs",
                     line_item_line_item_description="Reserved instance fee")
        elif j < 0.9:
            r.update(line_item_line_item_type="Tax", line_item_product_code="AmazonEC2", line_item_tax_type="VAT",
                     line_item_unblended_cost=money(rng, rng.uniform(0, 2), False),
                     line_item_line_item_description="Tax for product code AmazonEC2")
        elif j < 0.93:
            r.update(line_item_line_item_type="Credit", line_item_product_code="AmazonEC2",
                     line_item_unblended_cost=money(rng, -rng.uniform(0, 3), False),
                     line_item_line_item_description="AWS Credit")
        else:
            gb = rng.uniform(0, 5)
            r.update(line_item_line_item_type="Usage", line_item_product_code="AWSDataTransfer",
                     line_item_usage_type=reg[2] + "DataTransfer-Out-Bytes", line_item_usage_amount="%.9f" % gb,
                     line_item_unblended_cost=money(rng, gb * 0.09), pricing_unit="GB")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("format", choices=["focus", "cur2"])
    ap.add_argument("--lines", type=int, default=1000, help="data lines (default 1000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--month", default="2026-01", help="YYYY-MM of the charges")
    ap.add_argument("--crlf", action="store_true", help="CRLF line ends")
    ap.add_argument("-o", "--output", default="-")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    mo = Month(a.month)
    cols, make = (FOCUS_COLUMNS, focus_row) if a.format == "focus" else (CUR2_COLUMNS, cur2_row)
    nl = "\r\n" if a.crlf else "\n"
    out = sys.stdout if a.output == "-" else open(a.output, "w", newline="")
    out.write(",".join(cols) + nl)
    buf = []
    for i in range(a.lines):
        r = make(rng, mo, i)
        buf.append(",".join(csv_field(r[c]) if a.format == "focus" else csv_field(r[c] or "")
                            for c in cols) + nl)
        if len(buf) >= 10000:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
