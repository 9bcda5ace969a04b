//! The unit-conversion tool: length, mass, time, volume, area, speed, data and temperature, with exact rational
//! factors (the international yard and pound, US liquid measures, 365.25-day years), so conversions are exact until
//! the final rounding.

use num_rational::BigRational;
use num_traits::ToPrimitive;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::builtins::calculator::{decimal, display, evaluate};
use crate::tool::{FnTool, Tool};

/// One unit: its names, dimension, and the affine map to the dimension's base unit, `base = value·factor + offset`
/// (factor and offset as exact expressions).
struct Unit {
    names: &'static [&'static str],
    dimension: &'static str,
    factor: &'static str,
    offset: &'static str,
}

const fn u(names: &'static [&'static str], dimension: &'static str, factor: &'static str) -> Unit {
    Unit {
        names,
        dimension,
        factor,
        offset: "0",
    }
}

/// The table. Base units: metre, kilogram, second, cubic metre, square metre, metre per second, byte, kelvin.
const UNITS: &[Unit] = &[
    u(&["m", "meter", "meters", "metre", "metres"], "length", "1"),
    u(
        &["km", "kilometer", "kilometers", "kilometre", "kilometres"],
        "length",
        "1000",
    ),
    u(
        &[
            "cm",
            "centimeter",
            "centimeters",
            "centimetre",
            "centimetres",
        ],
        "length",
        "0.01",
    ),
    u(
        &[
            "mm",
            "millimeter",
            "millimeters",
            "millimetre",
            "millimetres",
        ],
        "length",
        "0.001",
    ),
    u(
        &["um", "micrometer", "micrometers", "micron", "microns"],
        "length",
        "0.000001",
    ),
    u(&["nm", "nanometer", "nanometers"], "length", "0.000000001"),
    u(&["in", "inch", "inches"], "length", "0.0254"),
    u(&["ft", "foot", "feet"], "length", "0.3048"),
    u(&["yd", "yard", "yards"], "length", "0.9144"),
    u(&["mi", "mile", "miles"], "length", "1609.344"),
    u(
        &["nmi", "nautical mile", "nautical miles"],
        "length",
        "1852",
    ),
    u(&["kg", "kilogram", "kilograms"], "mass", "1"),
    u(&["g", "gram", "grams"], "mass", "0.001"),
    u(&["mg", "milligram", "milligrams"], "mass", "0.000001"),
    u(
        &["t", "tonne", "tonnes", "metric ton", "metric tons"],
        "mass",
        "1000",
    ),
    u(&["lb", "lbs", "pound", "pounds"], "mass", "0.45359237"),
    u(&["oz", "ounce", "ounces"], "mass", "0.45359237/16"),
    u(&["st", "stone", "stones"], "mass", "0.45359237*14"),
    u(&["s", "sec", "second", "seconds"], "time", "1"),
    u(&["ms", "millisecond", "milliseconds"], "time", "0.001"),
    u(&["min", "minute", "minutes"], "time", "60"),
    u(&["h", "hr", "hour", "hours"], "time", "3600"),
    u(&["d", "day", "days"], "time", "86400"),
    u(&["wk", "week", "weeks"], "time", "604800"),
    u(&["yr", "year", "years"], "time", "86400*365.25"),
    u(
        &[
            "m3",
            "cubic meter",
            "cubic meters",
            "cubic metre",
            "cubic metres",
        ],
        "volume",
        "1",
    ),
    u(
        &["l", "liter", "liters", "litre", "litres"],
        "volume",
        "0.001",
    ),
    u(
        &[
            "ml",
            "milliliter",
            "milliliters",
            "millilitre",
            "millilitres",
        ],
        "volume",
        "0.000001",
    ),
    u(&["gal", "gallon", "gallons"], "volume", "0.003785411784"),
    u(&["qt", "quart", "quarts"], "volume", "0.003785411784/4"),
    u(&["pt", "pint", "pints"], "volume", "0.003785411784/8"),
    u(&["cup", "cups"], "volume", "0.003785411784/16"),
    u(
        &["floz", "fl oz", "fluid ounce", "fluid ounces"],
        "volume",
        "0.003785411784/128",
    ),
    u(
        &["tbsp", "tablespoon", "tablespoons"],
        "volume",
        "0.003785411784/256",
    ),
    u(
        &["tsp", "teaspoon", "teaspoons"],
        "volume",
        "0.003785411784/768",
    ),
    u(
        &[
            "m2",
            "square meter",
            "square meters",
            "square metre",
            "square metres",
        ],
        "area",
        "1",
    ),
    u(
        &["km2", "square kilometer", "square kilometers"],
        "area",
        "1000000",
    ),
    u(
        &["cm2", "square centimeter", "square centimeters"],
        "area",
        "0.0001",
    ),
    u(&["ha", "hectare", "hectares"], "area", "10000"),
    u(&["acre", "acres"], "area", "4046.8564224"),
    u(&["ft2", "square foot", "square feet"], "area", "0.3048^2"),
    u(&["in2", "square inch", "square inches"], "area", "0.0254^2"),
    u(
        &["mi2", "square mile", "square miles"],
        "area",
        "1609.344^2",
    ),
    u(
        &["m/s", "meters per second", "metres per second"],
        "speed",
        "1",
    ),
    u(
        &[
            "km/h",
            "kph",
            "kmh",
            "kilometers per hour",
            "kilometres per hour",
        ],
        "speed",
        "1000/3600",
    ),
    u(&["mph", "miles per hour"], "speed", "1609.344/3600"),
    u(&["kn", "knot", "knots"], "speed", "1852/3600"),
    u(&["ft/s", "feet per second"], "speed", "0.3048"),
    u(&["b", "byte", "bytes"], "data", "1"),
    u(&["bit", "bits"], "data", "1/8"),
    u(&["kb", "kilobyte", "kilobytes"], "data", "1000"),
    u(&["mb", "megabyte", "megabytes"], "data", "1000^2"),
    u(&["gb", "gigabyte", "gigabytes"], "data", "1000^3"),
    u(&["kib", "kibibyte", "kibibytes"], "data", "1024"),
    u(&["mib", "mebibyte", "mebibytes"], "data", "1024^2"),
    u(&["gib", "gibibyte", "gibibytes"], "data", "1024^3"),
    Unit {
        names: &["k", "kelvin"],
        dimension: "temperature",
        factor: "1",
        offset: "0",
    },
    Unit {
        names: &["c", "°c", "celsius", "degc"],
        dimension: "temperature",
        factor: "1",
        offset: "273.15",
    },
    Unit {
        names: &["f", "°f", "fahrenheit", "degf"],
        dimension: "temperature",
        factor: "5/9",
        offset: "459.67*5/9",
    },
];

/// The conversion's arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvertArgs {
    /// The quantity.
    pub value: f64,
    /// Its unit, e.g. "km", "lb", "fahrenheit", "gal".
    pub from: String,
    /// The unit wanted.
    pub to: String,
}

/// The unit-conversion tool, named `convert_units`.
pub fn unit_tool() -> impl Tool + Send + Sync + 'static {
    FnTool::new(
        "convert_units",
        "Converts a quantity between units of length, mass, time, volume, area, speed, data size or temperature.",
        |a: ConvertArgs| convert(a.value, &a.from, &a.to),
    )
}

fn find(name: &str, field: &str) -> Result<&'static Unit, String> {
    let key = name.trim().to_lowercase();
    UNITS
        .iter()
        .find(|u| u.names.contains(&key.as_str()))
        .ok_or_else(|| {
            format!(
                "`{field}`: unknown unit {name:?}; known: {}",
                UNITS
                    .iter()
                    .map(|u| u.names[0])
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

fn rational(expr: &str) -> Result<BigRational, String> {
    evaluate(expr).map_err(|e| e.to_string())
}

/// `value` in `from` expressed in `to`: `{"value": <number>, "exact": "<fraction>", "unit": to}`.
pub fn convert(value: f64, from: &str, to: &str) -> Result<Value, String> {
    if !value.is_finite() {
        return Err(format!("`value` must be finite, got {value}"));
    }
    let (a, b) = (find(from, "from")?, find(to, "to")?);
    if a.dimension != b.dimension {
        return Err(format!(
            "cannot convert {} ({from}) to {} ({to})",
            a.dimension, b.dimension
        ));
    }
    // The decimal the caller wrote (Rust prints the shortest representation that reads back), as an exact rational.
    let x = rational(&format!("{}", value.abs()))?;
    let x = if value < 0.0 { -x } else { x };
    let base = x * rational(a.factor)? + rational(a.offset)?;
    let out = (base - rational(b.offset)?) / rational(b.factor)?;
    let rounded = decimal(&out, 12);
    Ok(
        json!({"value": out.to_f64().unwrap_or(f64::NAN), "decimal": rounded, "exact": display(&out), "unit": b.names[0]}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;

    fn conv(v: f64, from: &str, to: &str) -> String {
        match convert(v, from, to) {
            Ok(r) => r["decimal"].as_str().unwrap_or_default().to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn conversions_match_the_definitions() {
        for (v, from, to, want) in [
            (1.0, "mile", "km", "1.609344"),
            (1.0, "in", "cm", "2.54"),
            (100.0, "ft", "m", "30.48"),
            (1.0, "kg", "lb", "2.204622621849"),
            (16.0, "oz", "lb", "1"),
            (1.0, "st", "kg", "6.35029318"),
            (2.5, "h", "min", "150"),
            (1.0, "year", "days", "365.25"),
            (1.0, "gal", "L", "3.785411784"),
            (1.0, "cup", "tbsp", "16"),
            (3.0, "tsp", "tbsp", "1"),
            (1.0, "acre", "m2", "4046.8564224"),
            (1.0, "ha", "acres", "2.471053814672"),
            (100.0, "km/h", "m/s", "27.777777777778"),
            (60.0, "mph", "km/h", "96.56064"),
            (1.0, "GiB", "MB", "1073.741824"),
            (8.0, "bits", "bytes", "1"),
            (100.0, "celsius", "fahrenheit", "212"),
            (-40.0, "F", "C", "-40"),
            (0.0, "K", "°C", "-273.15"),
            (98.6, "fahrenheit", "celsius", "37"),
            (0.1, "m", "mm", "100"),
        ] {
            assert_eq!(conv(v, from, to), want, "{v} {from} → {to}");
        }
        assert_eq!(convert(1.0, "ft", "in").expect("ok")["exact"], "12");
        assert_eq!(convert(1.0, "F", "C").expect("ok")["exact"], "-155/9");
    }

    #[test]
    fn unknown_units_and_dimension_mismatches_are_errors() {
        assert!(conv(1.0, "parsec", "m").contains("`from`: unknown unit \"parsec\""));
        assert!(conv(1.0, "m", "furlong").contains("`to`: unknown unit"));
        assert!(conv(1.0, "kg", "m").contains("cannot convert mass (kg) to length (m)"));
        assert!(conv(f64::INFINITY, "kg", "g").contains("finite"));
    }

    #[test]
    fn every_unit_name_is_unique_and_every_factor_is_exact() {
        let mut seen = std::collections::BTreeSet::new();
        for unit in UNITS {
            for n in unit.names {
                assert_eq!(*n, n.to_lowercase(), "names are matched lowercased");
                assert!(seen.insert(*n), "`{n}` is listed twice");
            }
            assert!(
                rational(unit.factor).is_ok() && rational(unit.offset).is_ok(),
                "{}",
                unit.names[0]
            );
        }
    }

    #[test]
    fn the_tool_validates_through_its_schema() -> Result<()> {
        let r = unit_tool().call(json!({"value": 5, "from": "km", "to": "m"}))?;
        assert_eq!(r["value"], json!(5000.0));
        Ok(())
    }
}
