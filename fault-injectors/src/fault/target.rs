//! Which requests a fault applies to: an optional method and an optional path
//! pattern.

use std::fmt;

use http::Method;

/// Restricts a fault to some requests. An empty target matches every request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Target {
    /// Only requests with this method.
    pub method: Option<Method>,
    /// Only requests whose path matches this pattern.
    pub path: Option<PathPattern>,
}

impl Target {
    /// Whether a request with this method and path is targeted.
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && self.path.as_ref().is_none_or(|p| p.matches(path))
    }

    /// True when the target matches every request.
    pub fn is_everything(&self) -> bool {
        self.method.is_none() && self.path.is_none()
    }
}

/// A path pattern: literal segments, `*` or `{name}` for exactly one segment,
/// and a final `**` for any number of remaining segments.
///
/// `/api/v1/orders` matches only that path; `/api/v1/merchants/*/dashboard`
/// matches any merchant's dashboard; `/api/v1/risk/**` matches everything
/// below `/api/v1/risk/`.
#[derive(Clone, Debug, PartialEq)]
pub struct PathPattern {
    source: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Literal(String),
    One,
    Rest,
}

/// Why a path pattern was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PatternError {
    /// Patterns are absolute paths.
    #[error("path pattern `{0}` must start with `/`")]
    NotAbsolute(String),
    /// `**` only makes sense as the final segment.
    #[error("path pattern `{0}`: `**` may only be the last segment")]
    RestNotLast(String),
}

impl PathPattern {
    /// Parses a pattern.
    pub fn parse(source: &str) -> Result<Self, PatternError> {
        let Some(rest) = source.strip_prefix('/') else {
            return Err(PatternError::NotAbsolute(source.to_string()));
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let segment = match *part {
                "**" if i + 1 == parts.len() => Segment::Rest,
                "**" => return Err(PatternError::RestNotLast(source.to_string())),
                "*" => Segment::One,
                p if p.starts_with('{') && p.ends_with('}') => Segment::One,
                p => Segment::Literal(p.to_string()),
            };
            segments.push(segment);
        }
        Ok(Self {
            source: source.to_string(),
            segments,
        })
    }

    /// Whether `path` (without query string) matches.
    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut parts = rest.split('/');
        for segment in &self.segments {
            match segment {
                Segment::Rest => return true,
                Segment::One => {
                    if parts.next().is_none_or(str::is_empty) {
                        return false;
                    }
                }
                Segment::Literal(lit) => {
                    if parts.next() != Some(lit.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathPattern {
        PathPattern::parse(s).expect("valid pattern")
    }

    #[test]
    fn literal_pattern_matches_only_itself() {
        assert!(p("/api/v1/orders").matches("/api/v1/orders"));
        assert!(!p("/api/v1/orders").matches("/api/v1/orders/1"));
        assert!(!p("/api/v1/orders").matches("/api/v1/order"));
    }

    #[test]
    fn one_segment_wildcards() {
        let pat = p("/api/v1/merchants/{id}/dashboard");
        assert!(pat.matches("/api/v1/merchants/M001/dashboard"));
        assert!(!pat.matches("/api/v1/merchants//dashboard"));
        assert!(!pat.matches("/api/v1/merchants/M001/x/dashboard"));
        assert!(p("/api/*/orders").matches("/api/v2/orders"));
    }

    #[test]
    fn rest_wildcard_matches_any_suffix() {
        let pat = p("/api/v1/risk/**");
        assert!(pat.matches("/api/v1/risk/check"));
        assert!(pat.matches("/api/v1/risk/merchants/M1/summary"));
        assert!(!pat.matches("/api/v1/orders"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(
            PathPattern::parse("api"),
            Err(PatternError::NotAbsolute("api".into()))
        );
        assert!(matches!(
            PathPattern::parse("/a/**/b"),
            Err(PatternError::RestNotLast(_))
        ));
    }

    #[test]
    fn target_combines_method_and_path() {
        let target = Target {
            method: Some(Method::POST),
            path: Some(p("/api/v1/orders")),
        };
        assert!(target.matches(&Method::POST, "/api/v1/orders"));
        assert!(!target.matches(&Method::GET, "/api/v1/orders"));
        assert!(!target.matches(&Method::POST, "/health"));
        assert!(Target::default().matches(&Method::GET, "/anything"));
    }
}
