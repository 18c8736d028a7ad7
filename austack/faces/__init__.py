"""`austack.faces`: frame -> aligned face, shared by `prepare` and `predict`: the frame decoder
(`decode`: images, zip members, videos), dlib landmarks and tracking (`landmarks`), and the
49-point similarity alignment (`align`)."""
