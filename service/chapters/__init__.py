"""The chapter pipeline: one generation per chapter, its subscribers, the post-stream work."""
