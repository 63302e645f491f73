//! The conformance suite: one set of checks of the example app's contract
//! (the routes and rules listed in the repository README), run over real
//! HTTP on loopback against every adapter (see `tests/conformance.rs`) and
//! every store.
//!
//! An adapter joins through the [`Adapter`] trait: it serves the contract
//! with a given engine on a loopback port, and
//! `conformance_suite!(name, Target::on(&MyAdapter, Backend::Memory))` runs
//! every check against it. [`Framework`] is this repository's three.
//!
//! Time is a [`ManualClock`] shared with the server's engine, so expiry is
//! tested at exact instants without sleeping.

pub mod checks;
pub mod http;
pub mod server;

pub use http::{Browser, Response};
pub use server::{Adapter, Backend, Framework, Target, TestServer};
pub use session_core::ManualClock;

/// Runs every check of [`checks`] against one [`Target`] (an adapter on a
/// store), as `#[tokio::test]`s.
#[macro_export]
macro_rules! conformance_suite {
    ($module:ident, $target:expr) => {
        mod $module {
            use $crate::checks;
            #[allow(unused_imports)]
            use $crate::{Framework, Target};
            $crate::conformance_suite!(@tests $target;
                healthz_answers_with_and_without_a_session,
                login_sets_a_secure_cookie_and_returns_the_profile,
                persistent_cookie_max_age_is_exact,
                an_empty_session_gets_no_cookie,
                routes_without_a_session_are_401,
                update_merges_and_keeps_json_types,
                bad_json_is_400_and_leaves_the_session_as_it_was,
                login_issues_a_new_id_and_kills_the_old_one,
                logout_kills_the_id_and_sends_a_matching_removal_cookie,
                logout_all_ends_exactly_that_users_sessions,
                forged_ids_are_never_adopted,
                idle_timeout_is_exact,
                absolute_lifetime_ends_an_active_session,
                hostile_cookies_never_give_a_5xx,
                concurrent_writes_of_different_keys_are_all_kept,
                unknown_routes_are_404_json,
                a_slow_write_during_logout_does_not_resurrect,
                an_oversized_body_is_413_json,
                posts_that_are_not_json_are_415_and_change_nothing,
                writes_over_the_size_limit_are_413_and_change_nothing,
                a_header_transport_works_without_cookies,
                header_transport_answers_that_use_the_session_are_no_store,
                duplicate_id_headers_are_401_and_change_nothing,
                duplicate_content_types_are_415_and_change_nothing,
                clear_site_data_comes_only_with_answers_that_end_the_session,
                a_partitioned_cookie_is_set_and_removed_partitioned,
                devices_are_listed_and_ended_by_handle,
                a_handle_is_never_a_session_id,
                authenticated_at_is_set_by_login_and_kept,
            );
        }
    };
    (@tests $target:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let target: Target = $target;
                if target.backend.available() {
                    checks::$check(target).await;
                }
            }
        )*
    };
}
