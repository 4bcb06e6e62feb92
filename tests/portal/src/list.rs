//! Pagination of list methods (§3.2): pages of 50 items, the reserved
//! `start` parameter as the offset, and the top-level `total` and `next`
//! the server adds to a list method's answer (`IRestService::setNavData`).

use serde_json::Value;

use crate::php;

/// Items per page (`IRestService::LIST_LIMIT`).
pub const PAGE_SIZE: usize = 50;

/// Where a list call starts, read from the reserved `start` parameter
/// before the server removes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Skip this many items and count them all (`start` absent or ≥ 0).
    Offset(usize),
    /// The first page without counting (`start` negative, as in
    /// `start=-1`): `total` is `0` and there is no `next`.
    Uncounted,
}

impl Default for Start {
    fn default() -> Self {
        Self::Offset(0)
    }
}

impl Start {
    /// PHP `intval` of the `start` parameter: absent, empty or non-numeric
    /// is 0, a negative value turns counting off.
    pub fn from_param(value: Option<&Value>) -> Self {
        usize::try_from(php::to_int(value)).map_or(Self::Uncounted, Self::Offset)
    }
}

/// The navigation a list answer carries next to `result`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// `start` of the following page, when there is one.
    pub next: Option<usize>,
    /// How many items match (`0` when counting is off).
    pub total: usize,
}

/// Cuts one page out of `items` (already filtered and ordered).
pub fn paginate<T>(items: Vec<T>, start: Start) -> (Vec<T>, Page) {
    let matched = items.len();
    let (offset, counted) = match start {
        Start::Offset(n) => (n, true),
        Start::Uncounted => (0, false),
    };
    let page: Vec<T> = items.into_iter().skip(offset).take(PAGE_SIZE).collect();
    let end = offset.saturating_add(page.len());
    let nav = Page {
        next: (counted && end < matched).then_some(end),
        total: if counted { matched } else { 0 },
    };
    (page, nav)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn start_follows_php_intval() {
        assert_eq!(Start::from_param(None), Start::Offset(0));
        assert_eq!(Start::from_param(Some(&json!("abc"))), Start::Offset(0));
        assert_eq!(Start::from_param(Some(&json!("50"))), Start::Offset(50));
        assert_eq!(Start::from_param(Some(&json!(-1))), Start::Uncounted);
        assert_eq!(Start::from_param(Some(&json!("-5"))), Start::Uncounted);
    }

    #[test]
    fn pages_have_next_until_the_last() {
        let items: Vec<u32> = (0..120).collect();
        let (first, nav) = paginate(items.clone(), Start::default());
        assert_eq!((first.len(), nav.next, nav.total), (50, Some(50), 120));
        let (last, nav) = paginate(items.clone(), Start::Offset(100));
        assert_eq!((last.len(), nav.next, nav.total), (20, None, 120));
        let (odd, nav) = paginate(items.clone(), Start::Offset(75));
        assert_eq!((odd[0], odd.len(), nav.next), (75, 45, None));
        let (beyond, nav) = paginate(items.clone(), Start::Offset(500));
        assert_eq!((beyond.len(), nav.next, nav.total), (0, None, 120));
        let (uncounted, nav) = paginate(items, Start::Uncounted);
        assert_eq!((uncounted.len(), nav.next, nav.total), (50, None, 0));
    }
}
