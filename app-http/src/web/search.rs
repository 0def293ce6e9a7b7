//! Home and caller search.

use crate::auth::{CsrfForm, SignedIn};
use crate::reply::html::{Chrome, Page};
use crate::reply::render;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use fctr_core::Denial;
use fctr_ports::{Reason, UserQuery};
use serde::Deserialize;

/// `GET /`.
pub(crate) async fn home(ctx: Page) -> Response {
    if ctx.session.is_some() {
        Redirect::to("/search").into_response()
    } else {
        ctx.sign_in_page(StatusCode::OK, "")
    }
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    c: Chrome,
    query: String,
    searched: bool,
    results: Vec<ResultRow>,
}

struct ResultRow {
    handle: String,
    name: String,
    login: String,
    status: String,
    tone: &'static str,
}

/// `GET /search`.
pub(crate) async fn search_form(me: SignedIn) -> Response {
    let ctx = me.page;
    render(
        StatusCode::OK,
        &SearchPage {
            c: ctx.chrome(),
            query: String::new(),
            searched: false,
            results: Vec::new(),
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct SearchForm {
    #[serde(default)]
    q: String,
}

/// `POST /search` (a POST so the search text never appears in a URL or an access log).
pub(crate) async fn search_submit(CsrfForm(me, f): CsrfForm<SearchForm>) -> Response {
    let SignedIn {
        page: ctx,
        session,
        agent,
    } = me;
    let Ok(query) = UserQuery::guess(&f.q) else {
        return ctx.denial_page(&Denial::new(Reason::InvalidInput), "/search");
    };
    let users = match ctx.state.engine().search(&agent, &ctx.rctx, &query).await {
        Ok(u) => u,
        Err(d) => return ctx.denial_page(&d, "/search"),
    };
    let mut results = Vec::with_capacity(users.len());
    for u in &users {
        // One atomic step on the stored session per caller: a sign-out during the search leaves nothing to add
        // to, and another tab's handles stay.
        let added = ctx
            .state
            .sessions()
            .add_caller(&session.id, &u.id, &crate::session::random_handle())
            .await;
        let handle = match added {
            Ok(Some(h)) => h,
            Ok(None) => return ctx.session_ended(),
            Err(_) => return ctx.state_down_page(),
        };
        results.push(ResultRow {
            handle,
            name: u
                .display_name
                .as_ref()
                .map(|n| n.expose_pii().to_owned())
                .unwrap_or_default(),
            login: u.login.expose_pii().to_owned(),
            status: super::status_words(&u.status),
            tone: super::status_tone(&u.status),
        });
    }
    render(
        StatusCode::OK,
        &SearchPage {
            c: ctx.chrome(),
            query: f.q,
            searched: true,
            results,
        },
    )
}
