// The signed-in user's vote on the version a message shows, without the
// DOM (tested under node: tests/web/test_votes.mjs).
//
// Only a session's owner can see, and so vote on, its messages (another
// user's message is 404), and a second vote of the same user on a version
// replaces the first: a version's counts are the owner's own vote, so they
// say which vote is "pressed", the same after a reload and in every tab.

// 'upvote', 'downvote' or null.
export function myVote(m) {
  if (m.metadata.upvotes > 0) return 'upvote';
  if (m.metadata.downvotes > 0) return 'downvote';
  return null;
}

// What a click on `clicked` does: the pressed vote is withdrawn, the other
// one is given (and replaces it).
export function voteAction(m, clicked) {
  return myVote(m) === clicked ? 'withdraw' : 'submit';
}
