//! Task reminders (seed 004 `reminder_at`): when a task's reminder time comes, its assignee
//! gets an email and `task.reminder_due` is published, once per reminder time, with any
//! number of instances running (the reminder row is claimed with `FOR UPDATE SKIP LOCKED`
//! and marked sent in the same transaction). A changed `reminder_at` schedules it again; a
//! cleared one or a closed task cancels it (`repo::reminders::sync`, on every task write).

use crm_client_communication::TaskReminderDue;
use crm_client_communication::subjects::TASK_REMINDER_DUE;
use crm_events::publish;
use crm_tenant::{DbError, TenantId};

use crate::AppState;
use crate::mailer::OutgoingEmail;
use crate::render::html_escape;
use crate::repo::emails::{self as email_repo, EmailWrite};
use crate::repo::{reminders as repo, tasks as task_repo};

/// Sends one due reminder of `tenant`, if any; `true` when one was handled.
pub async fn process_one(state: &AppState, tenant: &TenantId) -> Result<bool, DbError> {
    let tx = state.db.tenant(tenant).await?;
    let Some(due) = repo::claim_due(&tx, 1).await?.pop() else {
        tx.commit().await?;
        return Ok(false);
    };
    let Some(task) = task_repo::by_id(&tx, due.task_id).await? else {
        tx.commit().await?;
        return Ok(true);
    };
    let event = TaskReminderDue {
        task_id: task.task.id,
        title: task.task.title.clone(),
        assigned_to: task.task.assigned_to,
        reminder_at: due.remind_at,
        due_date: task.task.due_date,
        contact_id: task.task.contact_id,
        deal_id: task.task.deal_id,
    };
    // The assignee's address, with a service token (a user without one gets the event only).
    let ctx = match super::emails::service_context(&state.auth.keys, tenant, &format!("reminder-{}", task.task.id)) {
        Ok(ctx) => ctx,
        Err(e) => {
            tracing::error!(error = %e, "reminder: cannot sign a service token");
            repo::mark_failed(&tx, due.task_id, "cannot sign a service token", state.settings.automation.retry_at(due.attempts + 1)).await?;
            tx.commit().await?;
            return Ok(true);
        }
    };
    let user = match state.clients.auth.user_basic(&ctx, task.task.assigned_to).await {
        Ok(user) => Some(user),
        Err(crm_client_core::ClientError::NotFound) => None,
        Err(e) => {
            let error = format!("cannot look up the assignee: {e}");
            tracing::warn!(task_id = task.task.id, %error, "reminder: retrying");
            repo::mark_failed(&tx, due.task_id, &error, state.settings.automation.retry_at(due.attempts + 1)).await?;
            tx.commit().await?;
            return Ok(true);
        }
    };
    let mut note = None;
    match user.as_ref().map(|u| u.email.trim()).filter(|e| !e.is_empty()) {
        Some(address) => {
            let key = format!("reminder:{}:{}", task.task.id, due.remind_at.timestamp_micros());
            let message_id = format!("{}@{}", ulid::Ulid::generate(), state.settings.message_id_domain());
            let subject: String = format!("Reminder: {}", task.task.title).chars().take(255).collect();
            let due_line = task.task.due_date.map(|d| format!("Due {}.", d.format("%Y-%m-%d %H:%M UTC"))).unwrap_or_default();
            let link = format!("{}/tasks/{}", state.settings.app_base_url, task.task.id);
            let text = format!("Reminder: {}\n{due_line}\n\n{}\n\nOpen the task: {link}\n", task.task.title, task.task.description);
            let html = format!(
                "<p><b>Reminder:</b> {}</p><p>{}</p><p>{}</p><p><a href=\"{}\">Open the task</a></p>",
                html_escape(&task.task.title),
                html_escape(&due_line),
                html_escape(&task.task.description),
                html_escape(&link)
            );
            let write = EmailWrite {
                kind: "reminder",
                status: "sent",
                activity_id: None,
                template_id: None,
                contact_id: None,
                deal_id: None,
                sender_id: None,
                email_address: address,
                subject: &subject,
                body_html: None,
                body_text: None,
                message_id: &message_id,
                sent_at: Some(chrono::Utc::now()),
                source_event_id: Some(&key),
                marketing: false,
            };
            // The row first: a second claim of the same reminder time (a crash between send
            // and commit) finds it and does not email twice.
            tx.execute("SAVEPOINT reminder_email", &[]).await?;
            if email_repo::insert(&tx, &write).await?.is_some() {
                let mail = OutgoingEmail { message_id, to: address.to_owned(), subject: subject.clone(), text, html: Some(html), list_unsubscribe: None };
                if let Err(e) = state.mailer.send(&mail).await {
                    let error = format!("reminder email not delivered: {e}");
                    tracing::warn!(task_id = task.task.id, %error, "reminder: retrying");
                    tx.execute("ROLLBACK TO SAVEPOINT reminder_email", &[]).await?;
                    repo::mark_failed(&tx, due.task_id, &error, state.settings.automation.retry_at(due.attempts + 1)).await?;
                    tx.commit().await?;
                    return Ok(true);
                }
            }
        }
        None => note = Some("the assignee has no email address: event only"),
    }
    publish(&tx, None, TASK_REMINDER_DUE, &event).await.map_err(super::publish_error)?;
    repo::mark_sent(&tx, due.task_id, note).await?;
    tx.commit().await?;
    Ok(true)
}
