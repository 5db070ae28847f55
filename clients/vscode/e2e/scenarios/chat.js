// Scenario "chat": placeholder until written.
'use strict';
module.exports = { name: 'chat', approveAccess: true, async run() { throw new Error('not written yet'); } };
