//! The date tool: add or subtract days and months, the number of days between two dates, the weekday of a date
//! (proleptic Gregorian calendar, ISO `YYYY-MM-DD` dates, via `chrono`).

use chrono::{Datelike, Months, NaiveDate};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::tool::{FnTool, Tool};

/// What to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DateOperation {
    /// `date` plus `amount` days (negative subtracts).
    AddDays,
    /// `date` plus `amount` months; a day past the end of the target month becomes its last day (Jan 31 + 1 month
    /// = Feb 28 or 29).
    AddMonths,
    /// Days from `date` to `other` (negative when `other` is earlier).
    Difference,
    /// The weekday of `date`.
    Weekday,
}

/// The date tool's arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DateArgs {
    /// The operation.
    pub operation: DateOperation,
    /// A date as YYYY-MM-DD.
    pub date: String,
    /// Days or months to add (add_days, add_months); negative subtracts.
    #[serde(default)]
    pub amount: Option<i64>,
    /// The second date as YYYY-MM-DD (difference).
    #[serde(default)]
    pub other: Option<String>,
}

/// The date tool, named `date`.
pub fn date_tool() -> impl Tool + Send + Sync + 'static {
    FnTool::new(
        "date",
        "Date arithmetic on YYYY-MM-DD dates: add_days, add_months, difference (days from date to other), weekday.",
        compute,
    )
}

fn parse(field: &str, s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|e| format!("`{field}` = {s:?} is not a YYYY-MM-DD date: {e}"))
}

fn need<T>(v: Option<T>, field: &str, op: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("`{field}` is required for {op}"))
}

/// Runs one date operation; the error names the field at fault.
pub fn compute(a: DateArgs) -> Result<Value, String> {
    let date = parse("date", &a.date)?;
    let out_of_range = || "the result is outside the supported calendar range".to_string();
    match a.operation {
        DateOperation::AddDays => {
            let n = need(a.amount, "amount", "add_days")?;
            let d = chrono::Duration::try_days(n)
                .and_then(|d| date.checked_add_signed(d))
                .ok_or_else(out_of_range)?;
            Ok(json!({"date": d.to_string(), "weekday": d.weekday().to_string()}))
        }
        DateOperation::AddMonths => {
            let n = need(a.amount, "amount", "add_months")?;
            let months = u32::try_from(n.unsigned_abs()).map_err(|_| out_of_range())?;
            let d = if n >= 0 {
                date.checked_add_months(Months::new(months))
            } else {
                date.checked_sub_months(Months::new(months))
            }
            .ok_or_else(out_of_range)?;
            Ok(json!({"date": d.to_string(), "weekday": d.weekday().to_string()}))
        }
        DateOperation::Difference => {
            let other = parse("other", &need(a.other, "other", "difference")?)?;
            Ok(json!({"days": (other - date).num_days()}))
        }
        DateOperation::Weekday => Ok(json!({"weekday": long_weekday(date.weekday())})),
    }
}

fn long_weekday(w: chrono::Weekday) -> &'static str {
    match w {
        chrono::Weekday::Mon => "Monday",
        chrono::Weekday::Tue => "Tuesday",
        chrono::Weekday::Wed => "Wednesday",
        chrono::Weekday::Thu => "Thursday",
        chrono::Weekday::Fri => "Friday",
        chrono::Weekday::Sat => "Saturday",
        chrono::Weekday::Sun => "Sunday",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;

    fn run(args: Value) -> Result<Value> {
        date_tool().call(args)
    }

    #[test]
    fn date_arithmetic_matches_the_calendar() -> Result<()> {
        assert_eq!(
            run(json!({"operation": "add_days", "date": "2024-02-28", "amount": 1}))?["date"],
            "2024-02-29"
        );
        assert_eq!(
            run(json!({"operation": "add_days", "date": "2023-03-01", "amount": -1}))?["date"],
            "2023-02-28"
        );
        assert_eq!(
            run(json!({"operation": "add_days", "date": "2026-12-06", "amount": 26}))?,
            json!({"date": "2027-01-01", "weekday": "Fri"})
        );
        assert_eq!(
            run(json!({"operation": "add_months", "date": "2024-01-31", "amount": 1}))?["date"],
            "2024-02-29"
        );
        assert_eq!(
            run(json!({"operation": "add_months", "date": "2024-03-31", "amount": -13}))?["date"],
            "2023-02-28"
        );
        assert_eq!(
            run(json!({"operation": "difference", "date": "2000-01-01", "other": "2024-01-01"}))?["days"],
            8766
        );
        assert_eq!(
            run(json!({"operation": "difference", "date": "2024-03-10", "other": "2024-03-01"}))?["days"],
            -9
        );
        assert_eq!(
            run(json!({"operation": "weekday", "date": "1969-07-20"}))?["weekday"],
            "Sunday"
        );
        assert_eq!(
            run(json!({"operation": "weekday", "date": "2026-12-06"}))?["weekday"],
            "Sunday"
        );
        Ok(())
    }

    #[test]
    fn bad_dates_and_missing_fields_name_the_field() {
        for (args, says) in [
            (
                json!({"operation": "weekday", "date": "2023-02-29"}),
                "`date` = \"2023-02-29\" is not a YYYY-MM-DD date",
            ),
            (
                json!({"operation": "difference", "date": "2023-02-01", "other": "tomorrow"}),
                "`other`",
            ),
            (
                json!({"operation": "add_days", "date": "2023-02-01"}),
                "`amount` is required for add_days",
            ),
            (
                json!({"operation": "add_days", "date": "2023-02-01", "amount": i64::MAX}),
                "outside the supported",
            ),
            (
                json!({"operation": "add_months", "date": "2023-02-01", "amount": 10_000_000_000i64}),
                "outside the supported",
            ),
            (
                json!({"operation": "fly", "date": "2023-02-01"}),
                "unknown variant `fly`",
            ),
        ] {
            let e = run(args.clone()).expect_err("bad").to_string();
            assert!(e.contains(says), "{args}: {e}");
        }
    }
}
