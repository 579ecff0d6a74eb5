// Package slacksim is a local stand-in for a Slack workspace, built on slack-go's slacktest
// Web API server: it answers the Web API methods xvmbot calls (chat.postMessage with
// unique timestamps, chat.update, chat.postEphemeral, response_url posts, auth.test,
// usergroups.users.list, apps.connections.open, views.open/update/push once EnableModals
// is called, views.publish for the App Home tab, and what `xvmbot check` asks: users.info,
// usergroups.list, the x-oauth-scopes header and, on demand, real token checks), keeps the channel as a person would see
// it (messages, edits, threads, ephemeral replies), and plays the people: it sends real
// signed slash commands and button clicks over HTTP, or real envelopes over a Socket Mode
// websocket, to the app under test.
//
// It also keeps what tests check: every text sent (Sent), call counts, 429s and failures
// on demand, a channel without the app. The bot tests, the end-to-end tests and
// `xvmbot demo` use it; nothing in production does.
package slacksim
