//! The filters a template applies with `|`: their names, arities and arguments, checked when
//! the template is parsed, so evaluation cannot fail on a name, an arity, a pattern, a date
//! format or a region.

use super::functions::{self, did_you_mean};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    Lower,
    Upper,
    Trim,
    Default(String),
    Not,
    Join(String),
    Split(String),
    Replace(String, String),
    RegexReplace(Pattern, String),
    Left(usize),
    Mid(usize, usize),
    StripSpaces,
    NormalizeDiacritics,
    Switch(String, Vec<(String, String)>),
    Date(String),
    E164(phonenumber::country::Id),
    /// A date moved by a number of days (negative: back).
    DateAdd(i64),
    TitleCase,
    /// The n-th (from 1) word, words split at any of the separator's characters.
    Word(usize, String),
    Append(String),
    First,
    Last,
    /// The n-th (from 1) value of a list.
    Item(usize),
    Count,
}

/// A compiled regular expression, compared by its text.
#[derive(Debug, Clone)]
pub(crate) struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

const FILTERS: &[&str] = &[
    "lower",
    "upper",
    "trim",
    "default",
    "not",
    "join",
    "split",
    "replace",
    "regex_replace",
    "left",
    "mid",
    "strip_spaces",
    "normalize_diacritics",
    "switch",
    "date",
    "e164",
    "date_add",
    "title_case",
    "word",
    "append",
    "first",
    "last",
    "item",
    "count",
];

/// A filter from its name and literal arguments, checked: arity, numbers, patterns, formats.
pub(super) fn build_filter(name: &str, args: &[String]) -> Result<Filter, String> {
    let arity = match name {
        "lower"
        | "upper"
        | "trim"
        | "not"
        | "strip_spaces"
        | "normalize_diacritics"
        | "title_case"
        | "first"
        | "last"
        | "count" => Some(0),
        "default" | "join" | "split" | "left" | "date" | "e164" | "date_add" | "append" | "item" => Some(1),
        "replace" | "regex_replace" | "mid" | "word" => Some(2),
        _ => None,
    };
    if let Some(expected) = arity.filter(|n| *n != args.len()) {
        return Err(format!("filter `{name}` takes {expected} argument(s), found {}", args.len()));
    }
    let number =
        |text: &str| text.parse::<usize>().map_err(|_| format!("filter `{name}` takes whole numbers, found `{text}`"));
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    Ok(match name {
        "lower" => Filter::Lower,
        "upper" => Filter::Upper,
        "trim" => Filter::Trim,
        "not" => Filter::Not,
        "strip_spaces" => Filter::StripSpaces,
        "normalize_diacritics" => Filter::NormalizeDiacritics,
        "default" => Filter::Default(arg(0)),
        "join" => Filter::Join(arg(0)),
        "split" if arg(0).is_empty() => return Err("`split` needs a non-empty separator".into()),
        "split" => Filter::Split(arg(0)),
        "replace" if arg(0).is_empty() => return Err("`replace` needs a non-empty text to replace".into()),
        "replace" => Filter::Replace(arg(0), arg(1)),
        "regex_replace" => {
            let regex = regex::Regex::new(&args[0])
                .map_err(|e| format!("`{}` is not a valid regular expression: {e}", args[0]))?;
            Filter::RegexReplace(Pattern(regex), arg(1))
        }
        "left" => Filter::Left(number(&args[0])?),
        "mid" => Filter::Mid(number(&args[0])?, number(&args[1])?),
        "date" => {
            functions::check_date_format(&args[0]).map_err(|e| format!("`date(\"{}\")`: {e}", args[0]))?;
            Filter::Date(arg(0))
        }
        "e164" => Filter::E164(functions::phone_region(&args[0])?),
        "date_add" => Filter::DateAdd(
            args[0]
                .parse()
                .map_err(|_| format!("filter `date_add` takes a whole number of days, found `{}`", args[0]))?,
        ),
        "title_case" => Filter::TitleCase,
        "word" if number(&args[0])? == 0 => return Err("`word` counts words from 1".into()),
        "word" if args[1].is_empty() => return Err("`word` needs separator characters, such as `\" \"`".into()),
        "word" => Filter::Word(number(&args[0])?, arg(1)),
        "append" => Filter::Append(arg(0)),
        "first" => Filter::First,
        "last" => Filter::Last,
        "item" if number(&args[0])? == 0 => return Err("`item` counts values from 1".into()),
        "item" => Filter::Item(number(&args[0])?),
        "count" => Filter::Count,
        "switch" if args.len().is_multiple_of(2) => {
            return Err(format!(
                "filter `switch` takes a default and then key, value pairs: `switch(\"Other\", \"Sales\", \"S\")`, found {} argument(s)",
                args.len()
            ));
        }
        "switch" => {
            let cases = args[1..].chunks(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
            Filter::Switch(arg(0), cases)
        }
        other => {
            return Err(format!(
                "unknown filter `{other}` (known: {}){}",
                FILTERS.join(", "),
                did_you_mean(FILTERS, other)
            ));
        }
    })
}
